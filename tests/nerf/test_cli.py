"""``robolearn-nerf``: presets compose; a tiny synthetic run writes its run folder; resume."""

from __future__ import annotations

import csv

import pytest

from .conftest import needs_nerfstudio


def test_nerf_presets_compose_and_reject_unknown_keys():
    from robolearn.config import ConfigError, compose
    from robolearn.nerf.config import NerfRunConfig

    for name in ("nerf/tiny", "nerf/sim"):
        cfg = compose(name)
        assert isinstance(cfg, NerfRunConfig)
    assert compose("nerf/tiny", ["bridge.sampling=uniform"]).bridge.sampling == "uniform"
    with pytest.raises(ConfigError):
        compose("nerf/tiny", ["bridge.not_a_field=1"])


def test_unknown_preset_is_a_clear_error(capsys):
    from robolearn.cli.nerf import main

    assert main(["train", "nerf/nope"]) == 2
    assert "valid: nerf/sim, nerf/tiny" in capsys.readouterr().err


@needs_nerfstudio
@pytest.mark.nerf
@pytest.mark.slow
def test_train_writes_run_folder_and_resumes(tmp_path):
    from robolearn.cli.nerf import main

    out = tmp_path / "run"
    common = [f"out_dir={out}", "bridge.image_width=16", "bridge.image_height=16",
              "bridge.rays_per_batch=128", "source.n_frames=16", "eval_every=4",
              "export_points=500", "bridge.max_eval_frames=2", "bridge.eval_every_k=4"]
    assert main(["train", "nerf/tiny", "steps=8", *common]) == 0
    for name in ("config.yaml", "metrics.csv", "psnr.png", "eval_grid.png",
                 "checkpoint/state.json", "checkpoint/model.safetensors", "points.ply"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [4, 8] and float(rows[-1]["psnr"]) > 5
    assert main(["train", "nerf/tiny", "steps=12", "resume=true", *common]) == 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert main(["render", str(out), "--eye", "0.9,0.3,0.5", "--target", "0,0,0.1",
                 "--size", "12"]) == 0
    assert (out / "view.png").is_file()
