"""Converter throughput: robomimic HDF5 and rosbag2 -> store, against just reading the input.

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


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="robolearn-convert-"))
    try:
        bench_robomimic(root)
        bench_rosbag(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
