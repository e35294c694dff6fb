"""The Zarr trajectory store: many episodes in one Zarr group, diffusion_policy style.

Layout (readable with plain ``zarr.open``)::

    <root>/zarr.json            attrs: format, format_version, schema, chunking, stats
    <root>/data/<key>           per-step arrays concatenated over time, chunked along time
    <root>/meta/episode_ends    int64 (N,): exclusive end step of every episode
    <root>/meta/episode_meta    str (N,): one JSON object per episode (task, instruction, ...)

Atomic appends.  Every file write of zarr's ``LocalStore`` goes to a temporary file that
is renamed over the target (object stores PUT whole objects), so a single file is always
either old or new.  An episode is written in this order: (1) the data arrays grow and
their new steps are written, (2) its metadata entry, (3) ``meta/episode_ends`` grows by
one and the new end is written - the commit.  A crash before (3) leaves extra steps
past the last committed end: nobody reads them, the next append overwrites them.  A
crash inside (3) can leave a trailing end of 0 (the fill value): the committed prefix of
``episode_ends`` is the longest one that is strictly increasing and backed by data, so
readers skip it and the next writer truncates it.  Writers on local disk hold an
exclusive ``flock`` so two writers never interleave.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from robolearn import keys as K
from robolearn.data.errors import StoreError, StoreLockedError, StoreVersionError
from robolearn.data.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Schema,
    check_against_schema,
    normalise_meta,
    normalise_steps,
)

EPISODE_ENDS = "meta/episode_ends"
EPISODE_META = "meta/episode_meta"
LOCK_FILE = ".robolearn-writer.lock"

DEFAULT_IMAGE_CHUNK_STEPS = 32
DEFAULT_LOWDIM_CHUNK_STEPS = 1024


def is_remote(url: str | os.PathLike) -> bool:
    s = str(url)
    return "://" in s and not s.startswith("file://")


def _local_path(url: str | os.PathLike) -> Path:
    s = str(url)
    return Path(s[len("file://"):] if s.startswith("file://") else s).expanduser()


def _make_zarr_store(url: str | os.PathLike, read_only: bool, storage_options: Mapping | None):
    from zarr.storage import FsspecStore, LocalStore

    if is_remote(url):
        try:
            return FsspecStore.from_url(str(url), storage_options=dict(storage_options or {}),
                                        read_only=read_only)
        except ImportError as e:  # e.g. s3fs missing
            raise StoreError(f"cannot open {url}: {e}; install the fsspec backend for this "
                             f"URL scheme (s3fs for s3://, gcsfs for gs://)") from e
    path = _local_path(url)
    if not read_only:
        path.mkdir(parents=True, exist_ok=True)
    return LocalStore(path, read_only=read_only)


def _codecs(kind: str, level: int):
    """Compressors: zstd for images (measured ~11x on 96 px sim frames), blosc-zstd with
    byte shuffle for low-dim floats, plain zstd for text."""
    from zarr.codecs import BloscCodec, ZstdCodec

    if kind == "lowdim":
        return BloscCodec(cname="zstd", clevel=level, shuffle="shuffle")
    return ZstdCodec(level=level)


class _sigint_deferred:
    """Hold Ctrl-C (SIGINT) while an episode is written, deliver it right after.

    zarr writes through a background event loop; a KeyboardInterrupt raised in the thread
    waiting on it (mid-append) hung writers and cut episodes short.  The previous handler
    (Python's KeyboardInterrupt, rclpy's shutdown...) runs once the commit is done.  Only
    the main thread can hold signals; elsewhere this does nothing.
    """

    def __enter__(self):
        import signal
        import threading

        self._old, self._pending = None, None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum, frame):
        self._pending = (signum, frame)

    def __exit__(self, *exc):
        import signal

        if self._old is None:
            return
        signal.signal(signal.SIGINT, self._old)
        if self._pending is not None:
            if callable(self._old):
                self._old(*self._pending)
            elif self._old == signal.SIG_DFL:
                raise KeyboardInterrupt


class TrajectoryStore:
    """Read and append episodes of a Zarr trajectory store.

    Use :meth:`create` for a new store and :meth:`open` for an existing one
    (``mode="r"`` to read, ``"a"`` to append).  ``url`` is a local path or an fsspec URL
    such as ``s3://bucket/demos.zarr`` (pass credentials/endpoint in ``storage_options``).
    """

    def __init__(self, group, url: str, mode: str, storage_options: Mapping | None = None):
        self._group = group
        self.url = str(url)
        self.mode = mode
        self.storage_options = dict(storage_options or {})
        self._lock_fd: int | None = None
        self._ends = np.zeros((0,), dtype=np.int64)
        self._meta_cache: list[dict] | None = None

    # ------------------------------------------------------------------ open / create
    @classmethod
    def create(cls, url: str | os.PathLike, *, schema: Schema | None = None,
               image_chunk_steps: int = DEFAULT_IMAGE_CHUNK_STEPS,
               lowdim_chunk_steps: int = DEFAULT_LOWDIM_CHUNK_STEPS,
               compression_level: int = 3, overwrite: bool = False,
               storage_options: Mapping | None = None) -> "TrajectoryStore":
        """Create an empty store.  Refuses to touch an existing one unless ``overwrite``."""
        import zarr

        if image_chunk_steps < 1 or lowdim_chunk_steps < 1:
            raise StoreError("chunk sizes must be >= 1 step (use >= 16 for images)")
        zstore = _make_zarr_store(url, read_only=False, storage_options=storage_options)
        exists = _group_exists(zstore)
        if exists and not overwrite:
            raise StoreError(f"a store already exists at {url}; open it with "
                             f"TrajectoryStore.open(url, mode='a') or pass overwrite=True")
        group = zarr.open_group(store=zstore, mode="w" if overwrite else "w-")
        group.attrs.update({
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "chunking": {"image_chunk_steps": int(image_chunk_steps),
                         "lowdim_chunk_steps": int(lowdim_chunk_steps)},
            "compression_level": int(compression_level),
        })
        group.create_array(EPISODE_META, shape=(0,), chunks=(1024,), dtype=str,
                           compressors=_codecs("text", compression_level))
        group.create_array(EPISODE_ENDS, shape=(0,), chunks=(4096,), dtype="int64",
                           fill_value=0, compressors=_codecs("lowdim", compression_level))
        store = cls(group, str(url), "a", storage_options)
        store._acquire_lock()
        if schema is not None:
            store._create_data_arrays(schema)
        return store

    @classmethod
    def open(cls, url: str | os.PathLike, mode: str = "r",
             storage_options: Mapping | None = None) -> "TrajectoryStore":
        """Open an existing store for reading (``"r"``) or appending (``"a"``)."""
        import zarr

        if mode not in ("r", "a"):
            raise StoreError(f"mode must be 'r' or 'a', got {mode!r}")
        if not is_remote(url) and not _local_path(url).exists():
            raise StoreError(f"no store at {url}; create one with TrajectoryStore.create or "
                             f"`robolearn-collect`")
        zstore = _make_zarr_store(url, read_only=(mode == "r"), storage_options=storage_options)
        try:
            group = zarr.open_group(store=zstore, mode="r" if mode == "r" else "r+")
        except Exception as e:  # noqa: BLE001 - zarr raises several types here
            raise StoreError(f"{url} is not a readable Zarr group ({type(e).__name__}: {e}); "
                             f"is the path right?") from e
        _check_format(group.attrs, url)
        store = cls(group, str(url), mode, storage_options)
        if mode == "a":
            store._acquire_lock()
            store._repair()
        store._load_ends()  # the group was just opened: no need to reopen it as refresh() does
        return store

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "TrajectoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ writer internals
    def _acquire_lock(self) -> None:
        if is_remote(self.url) or self._lock_fd is not None:
            return  # object stores: single writer is the caller's responsibility (documented)
        path = _local_path(self.url) / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(f"{self.url} is being written by another process; wait for "
                                   f"it to finish or open the store with mode='r'") from None
        self._lock_fd = fd

    def _repair(self) -> None:
        """Drop what a crashed writer left uncommitted (trailing ends, temp files)."""
        ends_arr = self._group[EPISODE_ENDS]
        committed = self._committed_count(ends_arr[:])
        if committed < ends_arr.shape[0]:
            ends_arr.resize((committed,))
        if not is_remote(self.url):
            for p in _local_path(self.url).rglob("*.partial"):
                p.unlink(missing_ok=True)

    def _committed_count(self, ends: np.ndarray) -> int:
        """Length of the longest prefix of ``ends`` that is committed (see module doc)."""
        if len(ends) == 0:
            return 0
        schema = self.schema
        data_len = min((self._group[f"data/{k}"].shape[0] for k in schema.keys), default=0) \
            if schema is not None else 0
        n_meta = self._group[EPISODE_META].shape[0]
        prev = np.concatenate([[0], ends[:-1]])
        ok = (ends > prev) & (ends <= data_len) & (np.arange(len(ends)) < n_meta)
        bad = np.flatnonzero(~ok)
        return int(bad[0]) if len(bad) else len(ends)

    def _create_data_arrays(self, schema: Schema) -> None:
        chunking = self._group.attrs["chunking"]
        level = int(self._group.attrs.get("compression_level", 3))
        for key, spec in schema.specs.items():
            if spec.is_image:
                chunks, kind = (chunking["image_chunk_steps"], *spec.shape), "image"
            elif spec.is_text:
                chunks, kind = (chunking["lowdim_chunk_steps"],), "text"
            else:
                chunks, kind = (chunking["lowdim_chunk_steps"], *spec.shape), "lowdim"
            self._group.create_array(f"data/{key}", shape=(0, *spec.shape), chunks=chunks,
                                     dtype=spec.dtype, compressors=_codecs(kind, level),
                                     overwrite=True,
                                     **({} if spec.is_text else {"fill_value": 0}))
        # the schema becomes visible only after all its arrays exist
        self._group.attrs["schema"] = schema.to_json()

    # ------------------------------------------------------------------ properties
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    @property
    def schema(self) -> Schema | None:
        s = self._group.attrs.get("schema")
        return Schema.from_json(s) if s else None

    @property
    def keys(self) -> list[str]:
        s = self.schema
        return s.keys if s else []

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self._ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.concatenate([[0], self._ends])).astype(np.int64)

    @property
    def n_episodes(self) -> int:
        return int(len(self._ends))

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        return (f"TrajectoryStore({self.url!r}, mode={self.mode!r}, episodes={self.n_episodes}, "
                f"steps={self.n_steps})")

    def array(self, key: str):
        """The raw zarr array behind ``key`` (may hold uncommitted steps past ``n_steps``)."""
        if self.schema is None or key not in self.schema:
            raise KeyError(f"{key!r} is not in this store; keys: {self.keys}")
        return self._group[f"data/{key}"]

    def chunk_steps(self, key: str) -> int:
        return int(self.array(key).chunks[0])

    # ------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """Re-read the committed episode list (to see episodes appended by another process)."""
        if self.mode == "r":
            import zarr

            # zarr caches a group's attributes when it is opened: reopen to see a schema
            # (and stats) written by another process since
            self._group = zarr.open_group(store=self._group.store, mode="r")
        self._load_ends()

    def _load_ends(self) -> None:
        ends = self._group[EPISODE_ENDS][:].astype(np.int64)
        self._ends = ends[: self._committed_count(ends)]
        self._meta_cache = None

    def _check_episode(self, i: int) -> int:
        n = self.n_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range: the store has {n} episodes")
        return i % n

    def episode_slice(self, i: int) -> slice:
        i = self._check_episode(i)
        start = int(self._ends[i - 1]) if i > 0 else 0
        return slice(start, int(self._ends[i]))

    def read(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps ``[start, stop)`` of ``key`` (global step indices), committed steps only."""
        n = self.n_steps
        stop = n if stop is None else min(stop, n)
        if start < 0 or start > stop:
            raise IndexError(f"bad step range [{start}, {stop}) for a store of {n} steps")
        return np.asarray(self.array(key)[start:stop])

    def get_episode(self, i: int, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        sl = self.episode_slice(i)
        return {k: self.read(k, sl.start, sl.stop) for k in (keys or self.keys)}

    def all_episode_meta(self) -> list[dict]:
        if self._meta_cache is None:
            raw = self._group[EPISODE_META][: self.n_episodes]
            self._meta_cache = [json.loads(s) for s in raw]
        return list(self._meta_cache)

    def fps(self) -> float:
        """The recording rate shared by every episode (Hz); 0.0 for an empty store.

        Raises ValueError when episodes were recorded at different rates: one policy's
        action chunks have one time base, so resample first (or split the store)."""
        rates = sorted({float(m[K.META_FPS]) for m in self.all_episode_meta()})
        if len(rates) > 1:
            raise ValueError(f"{self.url}: episodes were recorded at different rates {rates} Hz; "
                             f"one policy has one action time base: keep one rate per store "
                             f"(re-record or resample), or set policy.fps explicitly")
        return rates[0] if rates else 0.0

    def action_space(self) -> str:
        """The action space every episode records (``joint_pos``, ``ee_delta``, ...); "" for
        an empty store, or a mix (a multi-embodiment store pads actions per arm: each
        episode's own meta says what its actions command)."""
        kinds = {str(m.get(K.META_ACTION_SPACE, "")) for m in self.all_episode_meta()}
        return kinds.pop() if len(kinds) == 1 else ""

    def episode_meta(self, i: int) -> dict:
        return dict(self.all_episode_meta()[self._check_episode(i)])

    def load(self, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Decompress whole arrays into RAM (chunk-aligned reads, ~200 MB/s)."""
        return {k: self.read(k) for k in (keys or self.keys)}

    def iter_chunks(self, key: str) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, data)`` over committed steps, one storage chunk at a time."""
        cs, n = self.chunk_steps(key), self.n_steps
        for start in range(0, n, cs):
            stop = min(start + cs, n)
            yield start, stop, np.asarray(self.array(key)[start:stop])

    # ------------------------------------------------------------------ writing
    def append_episode(self, steps: Mapping[str, Any], meta: Mapping[str, Any]) -> int:
        """Validate and append one episode atomically; returns its index.

        ``steps`` maps keys (``robolearn.keys``) to time-major arrays of equal length
        (``language``/``skill`` may be one string or one string per step).  ``meta`` holds
        the per-episode fields in ``robolearn.keys.REQUIRED_META``.  On any validation
        error nothing is written.
        """
        if self.mode != "a":
            raise StoreError(f"{self.url} is open read-only; open it with mode='a' to append")
        arrays = normalise_steps(steps)
        meta = normalise_meta(meta)
        schema = self.schema
        if schema is None:
            schema = Schema.infer(arrays)
        else:
            check_against_schema(schema, arrays)
        if self._group.attrs.get("schema") is None:
            self._create_data_arrays(schema)

        with _sigint_deferred():
            return self._write_episode(schema, arrays, meta)

    def _write_episode(self, schema: Schema, arrays: dict, meta: dict) -> int:
        n, t0 = self.n_episodes, self.n_steps
        t1 = t0 + len(arrays[K.ACTION])
        # (1) data: grow (or cut a stale uncommitted tail) and write the new steps
        for key, spec in schema.specs.items():
            arr = self._group[f"data/{key}"]
            if arr.shape[0] != t1:
                arr.resize((t1, *spec.shape))
            value = arrays[key] if spec.is_text else arrays[key].astype(spec.dtype, copy=False)
            arr[t0:t1] = value
        # (2) episode metadata
        meta_arr = self._group[EPISODE_META]
        if meta_arr.shape[0] != n + 1:
            meta_arr.resize((n + 1,))
        meta_arr[n] = json.dumps(meta, sort_keys=True)
        # (3) commit: the episode becomes visible when its end is written
        ends_arr = self._group[EPISODE_ENDS]
        ends_arr.resize((n + 1,))
        ends_arr[n] = t1
        self._ends = np.append(self._ends, np.int64(t1))
        if self._meta_cache is not None:
            self._meta_cache.append(meta)
        return n

    def set_attr(self, name: str, value: Any) -> None:
        """Write a JSON value into the store's root attributes (e.g. ``stats``)."""
        if self.mode != "a":
            raise StoreError(f"{self.url} is open read-only; open it with mode='a' to write")
        self._group.attrs[name] = value

    # ------------------------------------------------------------------ sizes
    def nbytes(self, key: str) -> int:
        """Uncompressed bytes of the committed steps of ``key`` (0 for text)."""
        spec = self.schema[key]
        return spec.step_nbytes * self.n_steps

    def nbytes_stored(self, key: str | None = None) -> int:
        """Compressed bytes on disk/object storage (whole store when ``key`` is None)."""
        if key is not None:
            return int(self.array(key).nbytes_stored())
        total = sum(int(self.array(k).nbytes_stored()) for k in self.keys)
        for name in (EPISODE_ENDS, EPISODE_META):
            total += int(self._group[name].nbytes_stored())
        return total


def _group_exists(zstore) -> bool:
    import zarr

    try:
        zarr.open_group(store=zstore, mode="r")
        return True
    except Exception:  # noqa: BLE001
        return False


def _check_format(attrs: Mapping[str, Any], url) -> None:
    fmt = attrs.get("format")
    if fmt != FORMAT_NAME:
        raise StoreError(f"{url} is a Zarr group but not a robolearn trajectory store "
                         f"(format={fmt!r}); copy its episodes into a store made by TrajectoryStore.create")
    version = attrs.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise StoreVersionError(
            f"{url} has store format version {version!r}; this robolearn reads versions "
            f"1..{FORMAT_VERSION}: upgrade robolearn (pip install -U robolearn) to read it")


def copy_episodes(src: TrajectoryStore, dst: TrajectoryStore,
                  episodes: Sequence[int] | None = None, progress: bool = False) -> int:
    """Append episodes of ``src`` (all by default) to ``dst``; returns how many."""
    idx = list(range(src.n_episodes)) if episodes is None else list(episodes)
    it: Iterable[int] = idx
    if progress:
        from tqdm import tqdm

        it = tqdm(idx, desc=f"copy -> {dst.url}", unit="ep")
    for i in it:
        dst.append_episode(src.get_episode(i), src.episode_meta(i))
    return len(idx)
