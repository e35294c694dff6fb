"""LeRobotDataset v3 (Parquet + MP4) <-> robolearn store, both directions, streaming.

LeRobot v3 layout (``meta/info.json`` ``codebase_version: v3.0``)::

    meta/info.json                         fps, robot_type, features, path templates
    meta/tasks.parquet                     task string (pandas index) -> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet   one row per episode: length, tasks,
                                           dataset_from/to_index, data/<chunk,file>,
                                           videos/<key>/<chunk,file,from_timestamp,to_timestamp>
    meta/stats.json                        per-feature min/max/mean/std/count
    data/chunk-XXX/file-YYY.parquet        one row per frame, many episodes per file
    videos/<key>/chunk-XXX/file-YYY.mp4    many episodes per file, back to back

Key mapping (lossless for numeric data and annotations):

=============================  =================================================
LeRobot                        robolearn store
=============================  =================================================
``observation.state``          ``observation.state``
``action``                     ``action``
``next.reward`` / ``next.done``  ``reward`` / ``done`` (shape ``(1,)`` <-> scalar)
``observation.images.<cam>``   ``observation.images.<cam>`` (video: decoded with PyAV;
                               ``image`` dtype: PNG in the Parquet file)
``task`` (per frame, via       ``language`` (per step)
``task_index``)
``skill`` (``string`` feature) ``skill`` (per step)
any other numeric feature      kept under its name (``(1,)`` -> scalar)
=============================  =================================================

The per-episode metadata that LeRobot has no column for (task name, success, robot,
action space, source, seed) travels in ``meta/robolearn.json`` beside LeRobot's files: LeRobot's
reader ignores it, our importer restores the episodes' metadata from it exactly (and ignores
it, with a note, when the dataset was edited since and it no longer matches). Feature
``names`` (e.g. joint names) travel in the store's ``lerobot`` attribute and back.

Memory is bounded by one episode in both directions: data files are read as record batches in
order, videos are decoded/encoded sequentially with one open container per camera.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from robolearn import keys as K
from robolearn.data.convert import ConvertReport, append_or_drop, finish, resize_frames
from robolearn.data.errors import StoreError

CODEBASE_VERSION = "v3.0"
SIDECAR = "meta/robolearn.json"
SIDECAR_FORMAT = "robolearn.lerobot_sidecar"
#: structural columns every LeRobot v3 frame has (rebuilt on export, not stored)
STRUCTURAL = ("timestamp", "frame_index", "episode_index", "index", "task_index")
#: LeRobot name -> store key, where they differ
TO_STORE = {"next.reward": K.REWARD, "next.done": K.DONE}
TO_LEROBOT = {v: k for k, v in TO_STORE.items()}
DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_DATA_MB = 100
DEFAULT_VIDEO_MB = 200


def _chunk_path(template: str, chunk: int, file: int, **kw) -> str:
    return template.format(chunk_index=chunk, file_index=file, **kw)


# ---------------------------------------------------------------------------- reading
@dataclass
class _Episode:
    index: int
    length: int
    start: int  # dataset_from_index
    tasks: list[str]
    data_file: tuple[int, int]
    videos: dict[str, tuple[int, int, float]]  # key -> (chunk, file, from_timestamp)


def _load_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise StoreError(f"{root} has no meta/info.json: not a LeRobot dataset folder "
                         f"(pass the dataset's root, the folder holding meta/, data/, videos/)")
    info = json.loads(path.read_text())
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise StoreError(
            f"{root} is a LeRobot {version} dataset; this converter reads {CODEBASE_VERSION}. "
            f"Upgrade it first with LeRobot's converter "
            f"(python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=...)")
    return info


def _load_tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    t = pq.read_table(root / "meta" / "tasks.parquet")
    names = [c for c in t.column_names if c != "task_index"]
    if "task_index" not in t.column_names or not names:
        raise StoreError(f"{root}/meta/tasks.parquet has columns {t.column_names}; expected "
                         f"task_index and the task string")
    col = "task" if "task" in names else names[0]  # pandas writes the index as __index_level_0__
    return dict(zip(t.column("task_index").to_pylist(), t.column(col).to_pylist()))


def _iter_episode_rows(root: Path) -> Iterator[dict]:
    import pyarrow.parquet as pq

    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise StoreError(f"{root}/meta/episodes has no parquet files: the dataset was not "
                         f"finalised (LeRobotDataset.finalize()) or is incomplete")
    for f in files:
        pf = pq.ParquetFile(f)
        cols = [c for c in pf.schema_arrow.names if not c.startswith("stats/")]
        for batch in pf.iter_batches(columns=cols, batch_size=1024):
            yield from batch.to_pylist()


def _episode(row: dict, video_keys: Sequence[str]) -> _Episode:
    videos = {k: (int(row[f"videos/{k}/chunk_index"]), int(row[f"videos/{k}/file_index"]),
                  float(row[f"videos/{k}/from_timestamp"])) for k in video_keys}
    return _Episode(index=int(row["episode_index"]), length=int(row["length"]),
                    start=int(row["dataset_from_index"]), tasks=list(row.get("tasks") or []),
                    data_file=(int(row["data/chunk_index"]), int(row["data/file_index"])),
                    videos=videos)


class _FrameReader:
    """Rows of the data files in dataset order; one record batch in memory at a time."""

    def __init__(self, root: Path, template: str, columns: list[str]):
        self.root, self.template, self.columns = root, template, columns
        self._file: tuple[int, int] | None = None
        self._batches = None
        self._buf = None  # pyarrow Table of rows not yet handed out
        self._next_index = 0

    def _open(self, file: tuple[int, int]) -> None:
        import pyarrow.parquet as pq

        path = self.root / _chunk_path(self.template, *file)
        if not path.is_file():
            raise StoreError(f"data file {path} is missing")
        self._file = file
        self._batches = pq.ParquetFile(path).iter_batches(columns=self.columns, batch_size=4096)
        self._buf = None

    def take(self, ep: _Episode):
        """The episode's rows as a pyarrow Table."""
        import pyarrow as pa

        if self._file != ep.data_file:
            self._open(ep.data_file)
        parts, need = [], ep.length
        while need > 0:
            if self._buf is None or self._buf.num_rows == 0:
                batch = next(self._batches, None)
                if batch is None:
                    raise StoreError(f"episode {ep.index}: data file ended {need} rows early")
                self._buf = pa.Table.from_batches([batch])
            idx = self._buf.column("index")
            first = idx[0].as_py()
            if first < ep.start:  # rows of an episode we skipped (e.g. --episodes)
                skip = min(ep.start - first, self._buf.num_rows)
                self._buf = self._buf.slice(skip)
                continue
            n = min(need, self._buf.num_rows)
            parts.append(self._buf.slice(0, n))
            self._buf = self._buf.slice(n)
            need -= n
        table = pa.concat_tables(parts)
        eps = set(table.column("episode_index").to_pylist())
        if eps != {ep.index}:
            raise StoreError(f"episode {ep.index}: its rows {ep.start}..{ep.start + ep.length} "
                             f"hold episode(s) {sorted(eps)}: the episodes and data files disagree")
        return table


class _VideoReader:
    """Frames of one camera's video files, decoded sequentially with PyAV."""

    def __init__(self, root: Path, template: str, key: str):
        self.root, self.template, self.key = root, template, key
        self._path: Path | None = None
        self._container = None
        self._frames = None
        self._last_t = -math.inf
        self.max_error_s = 0.0

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _open(self, path: Path, t0: float) -> None:
        import av

        self.close()
        if not path.is_file():
            raise StoreError(f"video file {path} is missing")
        self._container = av.open(str(path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if t0 > 0:
            self._container.seek(int(t0 / stream.time_base), stream=stream, backward=True,
                                 any_frame=False)
        self._frames = ((float(f.pts * f.time_base), f) for f in self._container.decode(stream))
        self._path, self._last_t = path, -math.inf

    def read(self, file: tuple[int, int], times: np.ndarray, fps: float) -> np.ndarray:
        path = self.root / _chunk_path(self.template, *file, video_key=self.key)
        tol = 0.5 / fps
        if path != self._path or times[0] < self._last_t - 1e-6:
            self._open(path, float(times[0]))
        out = []
        for want in times:
            while True:
                item = next(self._frames, None)
                if item is None:
                    raise StoreError(f"{path} ended before t={want:.4f}s ({self.key})")
                t, frame = item
                self._last_t = t
                if t < want - tol:
                    continue
                if t > want + tol:
                    raise StoreError(f"{path} has no frame within {tol * 1e3:.1f} ms of "
                                     f"t={want:.4f}s (next frame at {t:.4f}s)")
                self.max_error_s = max(self.max_error_s, abs(t - want))
                out.append(frame.to_ndarray(format="rgb24"))
                break
        return np.stack(out)


def _decode_png(cells: list) -> np.ndarray:
    import io

    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in cells])


def _column(table, name: str, spec: dict) -> np.ndarray:
    col = table.column(name)
    shape = tuple(spec["shape"])
    if spec["dtype"] == "string":
        return np.asarray(col.to_pylist(), dtype=object)
    arr = col.combine_chunks()
    if len(shape) == 1 and shape != (1,):
        arr = np.asarray(arr.flatten().to_numpy(zero_copy_only=False)).reshape(len(table), *shape)
    else:
        arr = np.asarray(arr.to_numpy(zero_copy_only=False))
        if arr.dtype == object:  # nested lists (2-D features)
            arr = np.asarray(arr.tolist())
    return arr.astype(spec["dtype"], copy=False)


def convert_lerobot(src: str, dst: str, *, image_size: int | None = None,
                    instruction: str | None = None, task: str | None = None,
                    robot: str | None = None, episodes: Sequence[int] | None = None,
                    progress: bool = True, storage_options=None) -> ConvertReport:
    """Convert a local LeRobotDataset v3 folder into a new store, one episode at a time."""
    from robolearn.data.store import TrajectoryStore

    root = Path(src)
    info = _load_info(root)
    fps = float(info["fps"])
    feats: dict[str, dict] = info["features"]
    tasks = _load_tasks(root)
    report = ConvertReport(source=str(src), store=str(dst))
    t0 = time.perf_counter()

    video_keys = [k for k, f in feats.items() if f["dtype"] == "video"]
    image_keys = [k for k, f in feats.items() if f["dtype"] == "image"]
    missing = [k for k in (K.OBS_STATE, K.ACTION) if k not in feats]
    if missing:
        raise StoreError(f"{root} has no {missing} feature(s): a robolearn store needs "
                         f"observation.state and action; features: {sorted(feats)}")
    camera_keys = video_keys + image_keys
    bad_cams = [k for k in camera_keys if not K.is_image_key(k)]
    if bad_cams:
        raise StoreError(f"camera features {bad_cams} are not named observation.images.<camera>")
    text_keys = [k for k, f in feats.items() if f["dtype"] == "string"]
    numeric = [k for k, f in feats.items()
               if k not in STRUCTURAL and f["dtype"] not in ("video", "image", "string")]
    report.dropped_keys = [k for k in text_keys if k != K.SKILL]
    columns = list(STRUCTURAL) + numeric + image_keys + [k for k in text_keys if k == K.SKILL]

    sidecar_path = root / SIDECAR
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else None
    side_eps: dict[int, dict] = {}
    if sidecar and sidecar.get("format") == SIDECAR_FORMAT:
        side_eps = {int(e["episode_index"]): e for e in sidecar.get("episodes", [])}

    rows = list(_iter_episode_rows(root))
    wanted = set(int(i) for i in episodes) if episodes is not None else None
    if wanted is not None:
        unknown = wanted - {int(r["episode_index"]) for r in rows}
        if unknown:
            raise KeyError(f"episodes {sorted(unknown)} are not in {root} "
                           f"({len(rows)} episodes, 0..{len(rows) - 1})")
    frames = _FrameReader(root, info["data_path"], columns)
    readers = {k: _VideoReader(root, info["video_path"], k) for k in video_keys}
    store = TrajectoryStore.create(dst, storage_options=storage_options)
    it = rows
    if progress:
        from tqdm import tqdm

        it = tqdm(rows, desc=f"lerobot -> {Path(str(dst)).name}", unit="ep")
    stale = 0
    warned_success = False
    try:
        for row in it:
            ep = _episode(row, video_keys)
            if wanted is not None and ep.index not in wanted:
                continue
            def build(ep=ep):
                nonlocal stale, warned_success
                table = frames.take(ep)
                n = ep.length
                ts = table.column("timestamp").to_numpy().astype(np.float64)
                drift = np.abs(ts - np.arange(n) / fps)
                if drift.max(initial=0) > 0.5 / fps:
                    report.notes.append(f"episode {ep.index}: timestamps drift from frame_index/"
                                        f"fps by up to {drift.max():.3f}s (stored at {fps} Hz)")
                steps: dict[str, Any] = {}
                for k in numeric:
                    arr = _column(table, k, feats[k])
                    if arr.ndim == 2 and arr.shape[1] == 1 and tuple(feats[k]["shape"]) == (1,):
                        arr = arr[:, 0]
                    steps[TO_STORE.get(k, k)] = arr
                if K.REWARD not in steps:
                    steps[K.REWARD] = np.zeros(n, np.float32)
                if K.DONE not in steps:
                    steps[K.DONE] = np.arange(n) == n - 1
                task_idx = table.column("task_index").to_numpy()
                steps[K.LANGUAGE] = [tasks[int(i)] for i in task_idx] if instruction is None \
                    else instruction
                if K.SKILL in text_keys:
                    steps[K.SKILL] = [str(s) for s in table.column(K.SKILL).to_pylist()]
                for k in image_keys:
                    steps[k] = resize_frames(_decode_png(table.column(k).to_pylist()), image_size)
                for k, (chunk, file, from_ts) in ep.videos.items():
                    steps[k] = resize_frames(readers[k].read((chunk, file), from_ts + ts, fps),
                                             image_size)
                side = side_eps.get(ep.index)
                if side is not None and int(side.get("length", -1)) != n:
                    side, stale = None, stale + 1
                ep_instruction = instruction or (ep.tasks[0] if ep.tasks else tasks[int(task_idx[0])])
                if side is not None:
                    meta = {k: v for k, v in side.items() if k not in ("episode_index", "length")}
                    if instruction:
                        meta[K.META_INSTRUCTION] = instruction
                else:
                    if "next.success" in steps:
                        success = bool(np.asarray(steps["next.success"]).any())
                    elif "next.reward" in feats:
                        success = bool(np.asarray(steps[K.REWARD]).max(initial=0) > 0)
                    else:
                        success = True
                        if not warned_success:
                            report.notes.append("no success signal (next.success / next.reward): "
                                                "episodes marked successful (demonstrations)")
                            warned_success = True
                    meta = {K.META_TASK: task or ep_instruction, K.META_INSTRUCTION: ep_instruction,
                            K.META_SUCCESS: success, K.META_ROBOT: robot or info.get("robot_type")
                            or "unknown", K.META_FPS: fps, K.META_ACTION_SPACE: "lerobot",
                            K.META_SOURCE: f"lerobot:{root.name}/episode_{ep.index}"}
                return steps, meta

            append_or_drop(store, report, f"episode {ep.index}", build)
        store.set_attr("lerobot", {"features": {k: {"names": f.get("names")}
                                                for k, f in feats.items()},
                                   "robot_type": info.get("robot_type"), "fps": info["fps"]})
    finally:
        for r in readers.values():
            r.close()
        store.close()
    if stale:
        report.notes.append(f"{SIDECAR} does not match {stale} episode(s) (dataset edited since "
                            f"export): their metadata was rebuilt from the LeRobot files")
    if readers:
        worst = max(r.max_error_s for r in readers.values())
        report.notes.append(f"video frames matched to timestamps within {worst * 1e3:.2f} ms")
    report.notes.append(f"read {len(rows)} episode rows, {len(tasks)} task(s), "
                        f"{len(video_keys)} video + {len(image_keys)} image camera(s)")
    report.frames_per_s = report.steps / max(1e-9, time.perf_counter() - t0)
    return finish(report, storage_options)


# ---------------------------------------------------------------------------- writing
def _vector_names(names, n: int, prefix: str):
    if isinstance(names, list) and len(names) == n:
        return names
    return [f"{prefix}_{i}" for i in range(n)]


def _feature(key: str, spec, names, use_videos: bool, fps: int, vcodec: str) -> dict:
    if spec.is_image:
        h, w, c = spec.shape
        f = {"dtype": "video" if use_videos else "image", "shape": [h, w, c],
             "names": ["height", "width", "channels"]}
        if use_videos:
            f["info"] = {"video.height": h, "video.width": w,
                         "video.codec": {"libsvtav1": "av1", "libx264": "h264"}.get(vcodec, vcodec),
                         "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                         "video.fps": fps, "video.channels": c, "has_audio": False}
        return f
    if spec.is_text:
        return {"dtype": "string", "shape": [1], "names": None}
    shape = list(spec.shape) or [1]  # scalars and 1-D vectors (export drops the rest)
    return {"dtype": spec.dtype, "shape": shape,
            "names": names if shape == [1] else _vector_names(names, shape[0], key.split(".")[-1])}


def _arrow_type(f: dict):
    """Arrow type of a Parquet column (export writes scalars and 1-D vectors only)."""
    import pyarrow as pa

    if f["dtype"] == "string":
        return pa.string()
    if f["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    base = pa.from_numpy_dtype(np.dtype(f["dtype"]))
    return base if list(f["shape"]) == [1] else pa.list_(base, f["shape"][0])


def _hf_features(features: dict) -> dict:
    """The ``datasets`` feature description LeRobot's writer stores in Parquet metadata."""
    out = {}
    for k, f in features.items():
        if f["dtype"] == "video":
            continue
        if f["dtype"] == "image":
            out[k] = {"_type": "Image"}
        elif f["dtype"] == "string" or list(f["shape"]) == [1]:
            out[k] = {"dtype": f["dtype"], "_type": "Value"}
        else:  # 1-D vectors
            out[k] = {"feature": {"dtype": f["dtype"], "_type": "Value"}, "length": f["shape"][0],
                      "_type": "Sequence"}
    return out


class _RunningStats:
    """min/max/mean/std/count per feature; images per channel in [0, 1] as LeRobot does."""

    def __init__(self):
        self.s: dict[str, dict] = {}

    def add(self, key: str, x: np.ndarray, image: bool = False) -> None:
        x = np.asarray(x, np.float64)
        if image:  # (T, H, W, C) -> per channel
            x = x.reshape(-1, x.shape[-1]) / 255.0
        else:
            x = x.reshape(len(x), -1)
        d = self.s.setdefault(key, {"n": 0, "sum": 0.0, "sq": 0.0, "min": np.inf, "max": -np.inf,
                                    "image": image})
        d["n"] += len(x)
        d["sum"] = d["sum"] + x.sum(0)
        d["sq"] = d["sq"] + (x * x).sum(0)
        d["min"] = np.minimum(d["min"], x.min(0))
        d["max"] = np.maximum(d["max"], x.max(0))

    def to_json(self, counts: dict[str, int]) -> dict:
        out = {}
        for k, d in self.s.items():
            mean = d["sum"] / d["n"]
            std = np.sqrt(np.maximum(d["sq"] / d["n"] - mean ** 2, 0))
            fmt = (lambda v: np.asarray(v).reshape(-1, 1, 1).tolist()) if d["image"] \
                else (lambda v: np.asarray(v).tolist())
            out[k] = {"min": fmt(d["min"]), "max": fmt(d["max"]), "mean": fmt(mean),
                      "std": fmt(std), "count": [counts[k]]}
        return out


class _Rotating:
    """Files numbered chunk-XXX/file-YYY: the next file once one is full, a new chunk
    folder every ``chunks_size`` files (LeRobot's layout)."""

    chunk: int
    file: int
    chunks_size: int

    def next_file(self) -> None:
        self.close()
        self.file += 1
        if self.file >= self.chunks_size:
            self.chunk, self.file = self.chunk + 1, 0

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _VideoWriter(_Rotating):
    """One camera's MP4 files: frames appended episode after episode, rotated by size."""

    def __init__(self, root: Path, template: str, key: str, fps: int, vcodec: str, crf: int,
                 max_mb: float, chunks_size: int):
        self.root, self.template, self.key = root, template, key
        self.fps, self.vcodec, self.crf = fps, vcodec, crf
        self.max_bytes, self.chunks_size = max_mb * 1e6, chunks_size
        self.chunk = self.file = 0
        self._container = self._stream = None
        self.frames_in_file = 0
        self.bytes_in_file = 0  # muxed packet bytes (the encoder may not have flushed a file yet)
        self.path: Path | None = None

    def _open(self, h: int, w: int) -> None:
        import os

        import av

        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config otherwise
        self.path = self.root / _chunk_path(self.template, self.chunk, self.file,
                                            video_key=self.key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w")
        opts = {"g": "2", "crf": str(self.crf)}
        if self.vcodec == "libsvtav1":
            opts["preset"] = "12"
        self._stream = self._container.add_stream(self.vcodec, rate=self.fps, options=opts)
        self._stream.width, self._stream.height = w, h
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = Fraction(1, self.fps)
        self.frames_in_file = self.bytes_in_file = self.packets_in_file = 0

    def write_episode(self, frames: np.ndarray) -> tuple[int, int, float, float]:
        """Append an episode; returns (chunk, file, from_timestamp, to_timestamp)."""
        import av

        if self._container is None:
            self._open(*frames.shape[1:3])
        start = self.frames_in_file
        for img in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts, vf.time_base = self.frames_in_file, Fraction(1, self.fps)
            for pkt in self._stream.encode(vf):
                self.bytes_in_file += pkt.size
                self.packets_in_file += 1
                self._container.mux(pkt)
            self.frames_in_file += 1
        loc = (self.chunk, self.file, start / self.fps, self.frames_in_file / self.fps)
        # the encoder holds back a look-ahead of frames: count those at the mean packet size
        # so far (before the first packet: 1% of the raw frame, a typical AV1 ratio)
        per_frame = (self.bytes_in_file / self.packets_in_file if self.packets_in_file
                     else frames[0].nbytes / 100)
        pending = self.frames_in_file - self.packets_in_file
        if self.bytes_in_file + pending * per_frame >= self.max_bytes:
            self.next_file()
        return loc

    def close(self) -> None:
        if self._container is not None:
            for pkt in self._stream.encode():
                self._container.mux(pkt)
            self._container.close()
            self._container = None


class _DataWriter(_Rotating):
    """Data (or episode-metadata) Parquet files: one row group per episode, rotated by size."""

    def __init__(self, root: Path, template: str, schema, max_mb: float, chunks_size: int):
        self.root, self.template, self.schema = root, template, schema
        self.max_bytes, self.chunks_size = max_mb * 1e6, chunks_size
        self.chunk = self.file = 0
        self._writer = None
        self.path: Path | None = None

    def write(self, table) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self._writer is None:
            self.path = self.root / _chunk_path(self.template, self.chunk, self.file)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="snappy")
        loc = (self.chunk, self.file)
        self._writer.write_table(table.cast(self.schema))
        if self.path.stat().st_size >= self.max_bytes:
            self.next_file()
        return loc

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _png(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def export_lerobot(src: str, dst: str, *, use_videos: bool = True, vcodec: str = "libsvtav1",
                   crf: int = 30, overwrite: bool = False,
                   data_files_mb: float = DEFAULT_DATA_MB, video_files_mb: float = DEFAULT_VIDEO_MB,
                   chunks_size: int = DEFAULT_CHUNKS_SIZE, progress: bool = True,
                   storage_options=None) -> ConvertReport:
    """Write a store as a LeRobotDataset v3 folder that LeRobot's own reader loads."""
    import pandas as pd
    import pyarrow as pa

    from robolearn.data.store import TrajectoryStore

    store = TrajectoryStore.open(src, "r", storage_options)
    schema = store.schema
    if schema is None or store.n_episodes == 0:
        raise StoreError(f"{src} has no episodes to export")
    fps_f = store.fps()
    fps = int(round(fps_f))
    if abs(fps - fps_f) > 1e-6:
        raise StoreError(f"{src} is recorded at {fps_f} Hz; LeRobot datasets have an integer fps: "
                         f"resample the store first (robolearn.data.resample)")
    root = Path(dst)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{dst} exists and is not empty; pick a new folder or pass "
                                  f"--overwrite (its contents are deleted)")
        shutil.rmtree(root)
    if use_videos:
        import av

        if vcodec not in av.codecs_available:
            raise ValueError(f"video codec {vcodec!r} is not in this PyAV build; try libsvtav1 "
                             f"(LeRobot's default) or libx264, or --images png")
    report = ConvertReport(source=str(src), store=str(dst))
    t0 = time.perf_counter()
    names = (store.attrs.get("lerobot") or {}).get("features", {})
    feats: dict[str, dict] = {}
    for key in schema.keys:
        if key == K.LANGUAGE:
            continue  # LeRobot's per-frame task
        spec = schema[key]
        if not spec.is_image and not spec.is_text and len(spec.shape) > 1:
            report.dropped_keys.append(f"{key} (per-step shape {spec.shape}: LeRobot's reader "
                                       f"takes 1-D features)")
            continue
        lk = TO_LEROBOT.get(key, key)
        feats[lk] = _feature(lk, spec, (names.get(lk) or {}).get("names"), use_videos, fps, vcodec)
    for k in STRUCTURAL:
        feats[k] = {"dtype": "float32" if k == "timestamp" else "int64", "shape": [1],
                    "names": None}
    video_keys = [k for k, f in feats.items() if f["dtype"] == "video"]
    table_feats = {k: f for k, f in feats.items() if f["dtype"] != "video"}
    data_schema = pa.schema([(k, _arrow_type(f)) for k, f in table_feats.items()],
                            metadata={"huggingface": json.dumps(
                                {"info": {"features": _hf_features(table_feats)}})})
    ep_fields = [("episode_index", pa.int64()), ("tasks", pa.list_(pa.string())),
                 ("length", pa.int64()), ("data/chunk_index", pa.int64()),
                 ("data/file_index", pa.int64()), ("dataset_from_index", pa.int64()),
                 ("dataset_to_index", pa.int64())]
    for k in video_keys:
        ep_fields += [(f"videos/{k}/chunk_index", pa.int64()), (f"videos/{k}/file_index", pa.int64()),
                      (f"videos/{k}/from_timestamp", pa.float64()),
                      (f"videos/{k}/to_timestamp", pa.float64())]
    ep_fields += [("meta/episodes/chunk_index", pa.int64()), ("meta/episodes/file_index", pa.int64())]
    info = {"codebase_version": CODEBASE_VERSION,
            "robot_type": (store.attrs.get("lerobot") or {}).get("robot_type")
            or store.episode_meta(0).get(K.META_ROBOT),
            "total_episodes": 0, "total_frames": 0, "total_tasks": 0,
            "chunks_size": chunks_size, "data_files_size_in_mb": data_files_mb,
            "video_files_size_in_mb": video_files_mb, "fps": fps, "splits": {},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
            if video_keys else None,
            "features": feats}
    ep_path = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    data_w = _DataWriter(root, info["data_path"], data_schema, data_files_mb, chunks_size)
    ep_w = _DataWriter(root, ep_path, pa.schema(ep_fields), data_files_mb, chunks_size)
    videos = {k: _VideoWriter(root, info["video_path"], k, fps, vcodec, crf, video_files_mb,
                              chunks_size) for k in video_keys}
    stats = _RunningStats()
    tasks: dict[str, int] = {}
    side: list[dict] = []
    index = 0
    it = range(store.n_episodes)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"{Path(str(src)).name} -> lerobot", unit="ep")
    try:
        for i in it:
            ep = store.get_episode(i)
            meta = store.episode_meta(i)
            n = len(ep[K.ACTION])
            lang = [str(s) for s in ep[K.LANGUAGE]] if K.LANGUAGE in ep \
                else [meta[K.META_INSTRUCTION]] * n
            for s in lang:
                tasks.setdefault(s, len(tasks))
            cols: dict[str, Any] = {}
            for key in schema.keys:
                lk = TO_LEROBOT.get(key, key)
                if lk not in feats:
                    continue
                f, v = feats[lk], ep[key]
                if f["dtype"] == "video":
                    continue
                if f["dtype"] == "image":
                    cols[lk] = [{"bytes": _png(img), "path": None} for img in v]
                    stats.add(lk, v, image=True)
                elif f["dtype"] == "string":
                    cols[lk] = [str(s) for s in v]
                else:
                    v = np.asarray(v).astype(f["dtype"], copy=False)
                    cols[lk] = v.tolist() if v.ndim > 1 else v
                    stats.add(lk, v)
            struct = {"timestamp": (np.arange(n) / fps).astype(np.float32),
                      "frame_index": np.arange(n, dtype=np.int64),
                      "episode_index": np.full(n, i, np.int64),
                      "index": np.arange(index, index + n, dtype=np.int64),
                      "task_index": np.array([tasks[s] for s in lang], np.int64)}
            for k, v in struct.items():
                cols[k] = v
                stats.add(k, v)
            table = pa.table({k: pa.array(cols[k], type=data_schema.field(k).type)
                              for k in data_schema.names}, schema=data_schema)
            chunk, file = data_w.write(table)
            erow = {"episode_index": [i], "tasks": [list(dict.fromkeys(lang))], "length": [n],
                    "data/chunk_index": [chunk], "data/file_index": [file],
                    "dataset_from_index": [index], "dataset_to_index": [index + n]}
            for k in video_keys:
                frames = ep[TO_STORE.get(k, k)]
                vc, vf, t_from, t_to = videos[k].write_episode(frames)
                stats.add(k, frames, image=True)
                erow |= {f"videos/{k}/chunk_index": [vc], f"videos/{k}/file_index": [vf],
                         f"videos/{k}/from_timestamp": [t_from], f"videos/{k}/to_timestamp": [t_to]}
            erow |= {"meta/episodes/chunk_index": [ep_w.chunk], "meta/episodes/file_index": [ep_w.file]}
            ep_w.write(pa.table(erow, schema=pa.schema(ep_fields)))
            side.append({"episode_index": i, "length": n} | meta)
            index += n
            report.episodes += 1
            report.steps += n
    finally:
        data_w.close()
        ep_w.close()
        for v in videos.values():
            v.close()
        store.close()
    info |= {"total_episodes": report.episodes, "total_frames": index, "total_tasks": len(tasks),
             "splits": {"train": f"0:{report.episodes}"}}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    counts = {k: index for k in stats.s}
    (root / "meta" / "stats.json").write_text(json.dumps(stats.to_json(counts), indent=4))
    pd.DataFrame({"task_index": list(tasks.values())}, index=list(tasks)).to_parquet(
        root / "meta" / "tasks.parquet")
    (root / SIDECAR).write_text(json.dumps({"format": SIDECAR_FORMAT, "version": 1,
                                            "episodes": side}))
    n_cams = sum(f["dtype"] in ("video", "image") for f in feats.values())
    report.notes.append(f"{len(tasks)} task(s); {n_cams} camera(s) as "
                        + (f"{vcodec} video (crf {crf})" if use_videos else "PNG images"))
    report.frames_per_s = report.steps / max(1e-9, time.perf_counter() - t0)
    report.check_errors = check_lerobot(dst)
    report.check_ok = not report.check_errors
    return report


def check_lerobot(root: str) -> list[str]:
    """Structural check of a LeRobot v3 folder: every episode's rows and video spans exist."""
    import pyarrow.parquet as pq

    errors: list[str] = []
    r = Path(root)
    try:
        info = _load_info(r)
        rows = list(_iter_episode_rows(r))
    except StoreError as e:
        return [str(e)]
    video_keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    total = 0
    for row in rows:
        ep = _episode(row, video_keys)
        p = r / _chunk_path(info["data_path"], *ep.data_file)
        if not p.is_file():
            errors.append(f"episode {ep.index}: missing {p}")
        for k, (c, f, _) in ep.videos.items():
            vp = r / _chunk_path(info["video_path"], c, f, video_key=k)
            if not vp.is_file():
                errors.append(f"episode {ep.index}: missing {vp}")
        total += ep.length
    files = sorted((r / "data").glob("chunk-*/file-*.parquet"))
    rows_on_disk = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if rows_on_disk != total or total != info["total_frames"]:
        errors.append(f"frames: episodes say {total}, data files hold {rows_on_disk}, "
                      f"info.json says {info['total_frames']}")
    return errors
