"""Converter throughput: robomimic HDF5, rosbag2 and LeRobot v3 <-> store, against just reading.

    python benchmarks/bench_convert.py

The baseline for each converter is the time to read (and, for bags, deserialize) the same
input without converting it, measured in this run; the ratio says what converting costs
on top of reading.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))

from robolearn.data.convert import get_converter  # noqa: E402


def bench_robomimic(root: Path) -> None:
    import h5py
    from test_convert import _robomimic_file  # the same writer the tests use

    src = root / "rm.hdf5"
    _robomimic_file(src, lengths=[150] * 40)
    t = time.perf_counter()
    with h5py.File(src, "r") as f:
        n = 0
        for name in f["data"]:
            d = f["data"][name]
            for k in d["obs"]:
                d["obs"][k][:]
            d["actions"][:]
            n += d["actions"].shape[0]
    base = time.perf_counter() - t
    t = time.perf_counter()
    rep = get_converter("robomimic")(str(src), str(root / "rm.zarr"), progress=False)
    conv = time.perf_counter() - t
    print(f"robomimic: {n} steps (2 cameras 24px): read {n / base:8.0f} steps/s, convert "
          f"{n / conv:7.0f} steps/s ({2 * n / conv:7.0f} frames/s), convert/read time "
          f"{conv / base:.1f}x; check {'OK' if rep.check_ok else 'FAILED'}")


def bench_rosbag(root: Path) -> None:
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore
    from test_convert import _write_bag

    bag = root / "bag"
    _write_bag(bag, "mcap", gap_at=None, n_secs=60.0)
    ts = get_typestore(Stores.LATEST)
    t = time.perf_counter()
    msgs = 0
    with Reader(bag) as r:
        for conn, _, raw in r.messages():
            ts.deserialize_cdr(raw, conn.msgtype)
            msgs += 1
    base = time.perf_counter() - t
    t = time.perf_counter()
    rep = get_converter("rosbag")(str(bag), str(root / "bag.zarr"),
                                  cameras={"front": "/cam/image_raw"},
                                  joint_states="/joint_states", action="/arm/command",
                                  rate=10.0, progress=False)
    conv = time.perf_counter() - t
    print(f"rosbag:    {msgs} messages (100 Hz joints, 15 Hz images, 10 Hz commands, 60 s): "
          f"read {msgs / base:8.0f} msg/s, convert {msgs / conv:7.0f} msg/s -> {rep.steps} "
          f"steps at 10 Hz, convert/read time {conv / base:.1f}x; "
          f"check {'OK' if rep.check_ok else 'FAILED'}")


def bench_lerobot(root: Path, episodes: int = 20, length: int = 150, size: int = 96) -> None:
    """Store -> LeRobot v3 (AV1 video, and PNG) -> store: throughput and round-trip fidelity."""
    import io

    import av
    import pyarrow.parquet as pq
    from PIL import Image

    from robolearn import keys as K
    from robolearn.data.convert import compare_stores, get_exporter
    from robolearn.data.store import TrajectoryStore
    from robolearn.data.testing import make_synthetic_store

    src = root / "lr_src.zarr"
    make_synthetic_store(src, lengths=[length] * episodes, image_size=size)
    store = TrajectoryStore.open(src)
    n = store.n_steps
    t = time.perf_counter()
    for i in range(store.n_episodes):
        store.get_episode(i)
    read_store = time.perf_counter() - t
    for mode in ("video", "png"):
        out = root / f"lr_{mode}"
        t = time.perf_counter()
        rep = get_exporter("lerobot")(str(src), str(out), use_videos=mode == "video", progress=False)
        export = time.perf_counter() - t
        t = time.perf_counter()  # baseline: read the Parquet files and decode every video frame
        for f in sorted((out / "data").rglob("*.parquet")):
            table = pq.read_table(f)
            for k in table.column_names:
                if K.is_image_key(k):  # PNG cells
                    for cell in table.column(k).to_pylist():
                        np.asarray(Image.open(io.BytesIO(cell["bytes"])))
        for f in sorted((out / "videos").rglob("*.mp4")):
            with av.open(str(f)) as c:
                for fr in c.decode(c.streams.video[0]):
                    fr.to_ndarray(format="rgb24")
        read_lr = time.perf_counter() - t
        t = time.perf_counter()
        rep2 = get_converter("lerobot")(str(out), str(root / f"lr_{mode}.zarr"), progress=False)
        imp = time.perf_counter() - t
        cmp = compare_stores(store, TrajectoryStore.open(root / f"lr_{mode}.zarr"))
        exact = cmp["metadata_exact"] and cmp["exact_keys"] == cmp["lowdim_keys"]
        size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
        print(f"lerobot {mode:5s}: {n} steps x 2 cameras {size}px ({size_mb:.1f} MB): export "
              f"{2 * n / export:6.0f} frames/s ({export / read_store:.1f}x reading the store), "
              f"import {2 * n / imp:6.0f} frames/s ({imp / read_lr:.1f}x reading+decoding the "
              f"files); round trip: data+metadata {'bit-exact' if exact else 'DIFFERENT'}, "
              + (f"images PSNR mean {cmp['psnr_db_mean']:.1f} dB, min {cmp['psnr_db_min']:.1f} dB"
                 if not cmp["images_exact"] else "images bit-exact")
              + f"; checks {'OK' if rep.check_ok and rep2.check_ok else 'FAILED'}")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="robolearn-convert-"))
    try:
        bench_robomimic(root)
        bench_rosbag(root)
        bench_lerobot(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
