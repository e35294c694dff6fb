"""LeRobotDataset v3 <-> store, tested against LeRobot's own writer and reader.

The reference datasets are recorded by ``LeRobotDataset.create/add_frame/save_episode/
finalize`` and read back by ``LeRobotDataset.__getitem__`` (package ``lerobot-dataset``, in
its own venv: ``make lerobot-venv``; see tests/data/lerobot_reference.py). Non-video data must
survive bit for bit; video within codec tolerance (PSNR).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robolearn import keys as K
from robolearn.cli.data import main as data_main
from robolearn.data.convert import get_converter, get_exporter
from robolearn.data.errors import StoreError
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store

pytest.importorskip("pyarrow")
pytest.importorskip("av")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("lerobot_reference.py")


def _lerobot_python() -> str:
    py = os.environ.get("ROBOLEARN_LEROBOT_PYTHON") or str(REPO / ".venv-lerobot" / "bin" / "python")
    if not Path(py).is_file():
        pytest.skip("LeRobot's reference venv is missing: run `make lerobot-venv` (make test does)")
    return py


def _ref(*args) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    r = subprocess.run([_lerobot_python(), str(SCRIPT), *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, f"LeRobot reference {args[0]} failed:\n{r.stderr[-3000:]}"


def _lerobot_read(root: Path) -> dict:
    out = root.with_name(root.name + "_read.npz")
    _ref("read", root, out)
    d = dict(np.load(out))
    d["_meta"] = json.loads(str(d["_meta"]))
    return d


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def video_ds(tmp_path_factory) -> tuple[Path, dict]:
    """A 3-episode video dataset recorded by LeRobot's writer, and what it was given."""
    root = tmp_path_factory.mktemp("lerobot") / "ref_video"
    _ref("write", root, "--episodes", 3)
    return root, dict(np.load(str(root) + ".npz"))


@pytest.fixture(scope="module")
def image_ds(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("lerobot") / "ref_png"
    _ref("write", root, "--episodes", 2, "--images")
    return root, dict(np.load(str(root) + ".npz"))


def _all(store: TrajectoryStore, key: str) -> np.ndarray:
    return np.concatenate([store.get_episode(i, [key])[key] for i in range(store.n_episodes)])


def test_import_lerobot_video_dataset(video_ds, tmp_path):
    root, rec = video_ds
    rep = get_converter("lerobot")(str(root), str(tmp_path / "a.zarr"), progress=False)
    assert rep.check_ok, rep.check_errors
    assert (rep.episodes, rep.steps) == (3, len(rec["state"]))
    s = TrajectoryStore.open(tmp_path / "a.zarr")
    np.testing.assert_array_equal(_all(s, K.OBS_STATE), rec["state"])
    np.testing.assert_array_equal(_all(s, K.ACTION), rec["action"])
    np.testing.assert_array_equal(_all(s, "observation.environment_state"), rec["env"])
    np.testing.assert_array_equal(_all(s, K.REWARD), rec["reward"])
    np.testing.assert_array_equal(_all(s, K.DONE), rec["done"])
    assert [str(x) for x in _all(s, K.LANGUAGE)] == [str(x) for x in rec["task"]]
    assert [str(x) for x in _all(s, K.SKILL)] == [str(x) for x in rec["skill"]]
    for cam in ("front", "wrist"):  # LeRobot's AV1 encode (crf 30) of smooth frames
        got = _all(s, K.image_key(cam))
        assert got.shape == rec[cam].shape and _psnr(got, rec[cam]) > 30
    meta = s.all_episode_meta()
    assert [m[K.META_INSTRUCTION] for m in meta] == ["pick up the red cube", "open the drawer",
                                                     "put the cube in the bowl"]
    assert all(m[K.META_ROBOT] == "so100" and m[K.META_FPS] == 10.0 and m[K.META_SUCCESS]
               for m in meta)
    names = s.attrs["lerobot"]["features"]["observation.state"]["names"]
    assert names == [f"joint{i}" for i in range(6)] + ["gripper"]
    # a subset of episodes, and resizing
    rep = get_converter("lerobot")(str(root), str(tmp_path / "b.zarr"), episodes=[2],
                                   image_size=32, progress=False)
    s = TrajectoryStore.open(tmp_path / "b.zarr")
    assert rep.check_ok and s.n_episodes == 1
    n0 = int((rec["episode"] < 2).sum())
    np.testing.assert_array_equal(s.get_episode(0)[K.ACTION], rec["action"][n0:])
    assert s.schema[K.image_key("front")].shape == (32, 32, 3)


def test_roundtrip_through_lerobot_reader_is_exact_for_data(video_ds, tmp_path):
    """LeRobot -> store -> LeRobot: LeRobot's reader sees identical non-video data."""
    root, rec = video_ds
    get_converter("lerobot")(str(root), str(tmp_path / "a.zarr"), progress=False)
    # tiny file limits: several data and video files, so rotation is exercised both ways
    rep = get_exporter("lerobot")(str(tmp_path / "a.zarr"), str(tmp_path / "out"),
                                  data_files_mb=1e-6, video_files_mb=1e-6, progress=False)
    assert rep.check_ok, rep.check_errors
    assert len(list((tmp_path / "out/data").glob("chunk-*/file-*.parquet"))) == 3
    assert len(list((tmp_path / "out/videos/observation.images.front").glob("*/*.mp4"))) == 3
    orig, back = _lerobot_read(root), _lerobot_read(tmp_path / "out")
    for k in ("observation.state", "action", "observation.environment_state", "next.reward",
              "next.done", "timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert orig[k].dtype == back[k].dtype, k
        np.testing.assert_array_equal(orig[k], back[k], err_msg=k)
    assert list(orig["task"]) == list(back["task"]) and list(orig["skill"]) == list(back["skill"])
    for k in ("fps", "robot_type", "total_episodes", "tasks"):
        assert orig["_meta"][k] == back["_meta"][k], k
    for k, f in orig["_meta"]["features"].items():
        assert back["_meta"]["features"][k] == f, k
    for cam in ("front", "wrist"):  # decoded by LeRobot's read path at its 0.1 ms tolerance
        key = K.image_key(cam)
        assert _psnr(back[key], orig[key]) > 28  # a second lossy encode
        assert _psnr(back[key], rec[cam]) > 27


def test_png_images_roundtrip_bit_exact(image_ds, tmp_path):
    root, rec = image_ds
    rep = get_converter("lerobot")(str(root), str(tmp_path / "a.zarr"), progress=False)
    assert rep.check_ok and rep.steps == len(rec["state"])
    s = TrajectoryStore.open(tmp_path / "a.zarr")
    np.testing.assert_array_equal(_all(s, K.image_key("front")), rec["front"])
    rep = get_exporter("lerobot")(str(tmp_path / "a.zarr"), str(tmp_path / "out"),
                                  use_videos=False, progress=False)
    assert rep.check_ok, rep.check_errors
    back = _lerobot_read(tmp_path / "out")
    np.testing.assert_array_equal(back["observation.images.front"], rec["front"])
    np.testing.assert_array_equal(back["observation.images.wrist"], rec["wrist"])
    np.testing.assert_array_equal(back["observation.state"], rec["state"])


def test_store_to_lerobot_and_back_keeps_episode_metadata(tmp_path):
    src = tmp_path / "s.zarr"
    make_synthetic_store(src, lengths=(9, 14, 6))
    assert data_main(["export", "lerobot", str(src), str(tmp_path / "ds"), "--images", "png",
                      "--quiet"]) == 0
    back = _lerobot_read(tmp_path / "ds")
    s = TrajectoryStore.open(src)
    np.testing.assert_array_equal(back["action"], _all(s, K.ACTION))
    np.testing.assert_array_equal(back["observation.images.wrist"], _all(s, K.image_key("wrist")))
    assert list(back["task"]) == [str(x) for x in _all(s, K.LANGUAGE)]
    assert data_main(["convert", "lerobot", str(tmp_path / "ds"), str(tmp_path / "t.zarr"),
                      "--quiet"]) == 0
    t = TrajectoryStore.open(tmp_path / "t.zarr")
    assert t.all_episode_meta() == s.all_episode_meta()  # success, seed, source... via the sidecar
    for k in s.schema.keys:
        a, b = _all(s, k), _all(t, k)
        assert (a == b).all() if s.schema[k].is_text else np.array_equal(a, b), k


def test_errors_name_the_problem_and_fix(video_ds, tmp_path):
    root, _ = video_ds
    with pytest.raises(StoreError, match="not a LeRobot dataset"):
        get_converter("lerobot")(str(tmp_path), str(tmp_path / "x.zarr"), progress=False)
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    info = json.loads((root / "meta/info.json").read_text()) | {"codebase_version": "v2.1"}
    (old / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(StoreError, match="convert_dataset_v21_to_v30"):
        get_converter("lerobot")(str(old), str(tmp_path / "x.zarr"), progress=False)
    with pytest.raises(KeyError, match=r"episodes \[7\]"):
        get_converter("lerobot")(str(root), str(tmp_path / "y.zarr"), episodes=[7], progress=False)
    src = tmp_path / "s.zarr"
    make_synthetic_store(src, lengths=(5,))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("user data")
    assert data_main(["export", "lerobot", str(src), str(tmp_path / "busy"), "--quiet"]) == 2
    assert (tmp_path / "busy" / "keep.txt").read_text() == "user data"  # nothing lost


def test_stale_sidecar_is_ignored_with_a_note(tmp_path):
    src = tmp_path / "s.zarr"
    make_synthetic_store(src, lengths=(6, 8))
    get_exporter("lerobot")(str(src), str(tmp_path / "ds"), use_videos=False, progress=False)
    side = json.loads((tmp_path / "ds/meta/robolearn.json").read_text())
    side["episodes"][1]["length"] = 99  # as if the dataset had been edited by another tool
    (tmp_path / "ds/meta/robolearn.json").write_text(json.dumps(side))
    rep = get_converter("lerobot")(str(tmp_path / "ds"), str(tmp_path / "t.zarr"), progress=False)
    assert rep.check_ok and any("does not match 1 episode" in n for n in rep.notes)
    t = TrajectoryStore.open(tmp_path / "t.zarr")
    assert t.episode_meta(0)[K.META_SEED] == 0 and K.META_SEED not in t.episode_meta(1)
