import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import zarr

from robolearn import keys as K
from robolearn.cli.data import main
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store


def _store(tmp_path, name="s.zarr", lengths=(12, 20, 9)):
    p = tmp_path / name
    make_synthetic_store(p, list(lengths)).close()
    return str(p)


def test_info_json(tmp_path, capsys):
    p = _store(tmp_path)
    assert main(["info", p, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["episodes"] == 3 and d["steps"] == 41
    assert d["keys"][K.image_key("front")]["shape"] == [32, 32, 3]
    assert d["compression_ratio"] > 1.5
    assert d["episode_length"] == {"min": 9, "mean": 41 / 3, "max": 20}


def test_check_ok_then_corrupt_chunk(tmp_path, capsys):
    p = _store(tmp_path)
    assert main(["check", p]) == 0
    chunk = Path(p) / "data" / K.image_key("wrist") / "c" / "1" / "0" / "0" / "0"
    assert chunk.exists()
    chunk.write_bytes(b"\x00garbage" * 10)
    assert main(["check", p]) == 1
    out = capsys.readouterr().out
    assert f"data/{K.image_key('wrist')} chunk 1 (steps 16..31)" in out and "FAILED" in out


def test_check_bad_episode_ends(tmp_path, capsys):
    p = _store(tmp_path)
    g = zarr.open_group(p, mode="r+")
    g["meta/episode_ends"][:] = np.array([12, 10, 41])  # not increasing
    assert main(["check", p]) == 1
    assert "meta/episode_ends[1] = 10 is invalid" in capsys.readouterr().out


def test_check_reports_unknown_version(tmp_path, capsys):
    p = _store(tmp_path)
    zarr.open_group(p, mode="r+").attrs["format_version"] = 7
    assert main(["check", p]) == 1
    assert "upgrade robolearn" in capsys.readouterr().out


def test_stats_save_plot_merge_split(tmp_path, capsys):
    a, b = _store(tmp_path, "a.zarr"), _store(tmp_path, "b.zarr", (5, 6))
    assert main(["stats", a, "--save", "--json"]) == 0
    assert "stats" in TrajectoryStore.open(a).attrs
    png = tmp_path / "sum.png"
    assert main(["plot", a, "-o", str(png)]) == 0 and png.stat().st_size > 10_000
    m = str(tmp_path / "m.zarr")
    assert main(["merge", m, a, b, "--quiet"]) == 0
    assert TrajectoryStore.open(m).episode_lengths.tolist() == [12, 20, 9, 5, 6]
    tr, va = str(tmp_path / "tr.zarr"), str(tmp_path / "va.zarr")
    assert main(["split", m, "--train", tr, "--val", va, "--val-ratio", "0.4", "--quiet"]) == 0
    assert TrajectoryStore.open(tr).n_episodes == 3 and TrajectoryStore.open(va).n_episodes == 2


def test_merge_refuses_different_schema(tmp_path, capsys):
    a = _store(tmp_path, "a.zarr")
    b = tmp_path / "b.zarr"
    make_synthetic_store(b, [4], cameras=("front",)).close()
    assert main(["merge", str(tmp_path / "m.zarr"), a, str(b), "--quiet"]) == 2
    assert "same schema" in capsys.readouterr().err
    assert not (tmp_path / "m.zarr").exists()


def test_console_script_help():
    exe = Path(sys.executable).parent / "robolearn-data"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for verb in ("info", "check", "stats", "merge", "split", "plot"):
        assert verb in out
