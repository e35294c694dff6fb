"""Fast random access to the steps of a store: RAM when it fits, a chunk cache when not.

Zarr pays ~2-4 ms of fixed cost per slice, so cutting windows straight from the store
manages ~100 windows/s.  ``FrameSource`` never does that:

* low-dim and text arrays are always decompressed into RAM (they are small);
* image arrays are decompressed into RAM when they fit ``memory_budget_bytes``
  (chunk-aligned reads, ~200 MB/s), after which a window is a numpy gather;
* otherwise images are read one whole storage chunk at a time into an LRU cache of
  decompressed chunks bounded by the budget; pair it with
  :func:`robolearn.data.sampler.block_shuffle_order` so each chunk is read ~once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Iterable, Mapping

import numpy as np

from robolearn.data.store import TrajectoryStore, _local_path, is_remote


class ChunkCache:
    """LRU cache of decompressed chunks, bounded in bytes."""

    def __init__(self, budget_bytes: int):
        self.budget = int(budget_bytes)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._d: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, int], load) -> np.ndarray:
        arr = self._d.get(key)
        if arr is not None:
            self._d.move_to_end(key)
            self.hits += 1
            return arr
        self.misses += 1
        arr = load()
        self._d[key] = arr
        self.nbytes += arr.nbytes
        while self.nbytes > self.budget and len(self._d) > 1:
            _, old = self._d.popitem(last=False)
            self.nbytes -= old.nbytes
        return arr

    def clear(self) -> None:
        self._d.clear()
        self.nbytes = 0


class FrameSource:
    """Gather arbitrary global steps of a store's keys as numpy arrays."""

    def __init__(self, store: TrajectoryStore, keys: Iterable[str] | None = None,
                 memory_budget_bytes: float = 4 * 2**30, channels_first: bool = False):
        self.store = store
        # frames kept (T, 3, H, W) when the consumer wants CHW: transposed once at load
        # time instead of once per window (the transpose costs 3x the gather itself)
        self.channels_first = channels_first
        schema = store.schema
        if schema is None:
            raise ValueError(f"{store.url} has no episodes yet; collect some first")
        self.keys = list(keys) if keys is not None else schema.keys
        unknown = [k for k in self.keys if k not in schema]
        if unknown:
            raise KeyError(f"keys {unknown} are not in {store.url}; available: {schema.keys}")
        self.n_steps = store.n_steps
        self.memory_budget_bytes = float(memory_budget_bytes)
        image_keys = [k for k in self.keys if schema[k].is_image]
        image_bytes = sum(store.nbytes(k) for k in image_keys)
        self.in_memory = image_bytes <= self.memory_budget_bytes
        self._ram: dict[str, np.ndarray] = {}
        for k in self.keys:
            if not schema[k].is_image:
                self._ram[k] = store.read(k, 0, self.n_steps)
            elif self.in_memory:
                self._ram[k] = self._layout(
                    np.concatenate([b for _, _, b in store.iter_chunks(k)]) if self.n_steps
                    else store.read(k, 0, 0))
        self.cache = ChunkCache(int(self.memory_budget_bytes))
        self._chunk = {k: store.chunk_steps(k) for k in image_keys}
        self._direct: dict[str, object] = {}

    @property
    def mode(self) -> str:
        return "memory" if self.in_memory else "chunk-cache"

    def gather(self, key: str, idx: np.ndarray) -> np.ndarray:
        """Steps ``idx`` (any int array shape) of ``key``: output shape ``idx.shape + step``."""
        idx = np.asarray(idx, dtype=np.int64)
        arr = self._ram.get(key)
        if arr is not None:
            return arr[idx]
        flat = idx.reshape(-1)
        cs = self._chunk[key]
        chunk_ids = flat // cs
        out = None
        for c in np.unique(chunk_ids):
            chunk = self.cache.get((key, int(c)), lambda c=c: self._read_chunk(key, int(c)))
            sel = chunk_ids == c
            part = chunk[flat[sel] - c * cs]
            if out is None:
                out = np.empty((len(flat), *part.shape[1:]), dtype=part.dtype)
            out[sel] = part
        return out.reshape(*idx.shape, *out.shape[1:])

    def _read_chunk(self, key: str, c: int) -> np.ndarray:
        cs = self._chunk[key]
        stop = min((c + 1) * cs, self.n_steps)
        fast = self._direct_chunk_reader(key)
        if fast is not None:
            return self._layout(fast(c)[: stop - c * cs])
        return self._layout(self.store.read(key, c * cs, stop))

    def _layout(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) -> (T, 3, H, W) when channels_first."""
        return np.ascontiguousarray(frames.transpose(0, 3, 1, 2)) if self.channels_first else frames

    def _direct_chunk_reader(self, key: str):
        """Read+decode one chunk file without zarr's per-slice machinery (~15x less overhead).

        Only for the layout this store writes itself - a local store, uint8 frames, codecs
        exactly (bytes, zstd) - everything else goes through zarr.
        """
        if key in self._direct:
            return self._direct[key]
        fast = None
        arr = self.store.array(key)
        meta = arr.metadata
        names = [type(c).__name__ for c in getattr(meta, "codecs", ())]
        if not is_remote(self.store.url) and names == ["BytesCodec", "ZstdCodec"] \
                and np.dtype(self.store.schema[key].dtype) == np.uint8:
            import numcodecs

            root = _local_path(self.store.url) / arr.path
            codec, shape, tail = numcodecs.Zstd(), arr.chunks, (0,) * (len(arr.chunks) - 1)

            def reader(c: int) -> np.ndarray:
                path = root / meta.encode_chunk_key((c, *tail))
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:  # never-written chunk = fill value
                    return np.zeros(shape, dtype=np.uint8)
                return np.frombuffer(codec.decode(raw), dtype=np.uint8).reshape(shape)
            fast = reader
        self._direct[key] = fast
        return fast


def open_source(url: str, storage_options: Mapping | None, keys, budget: float,
                channels_first: bool = False) -> FrameSource:
    """Open a read-only store and its source (used lazily inside DataLoader workers)."""
    return FrameSource(TrajectoryStore.open(url, "r", storage_options), keys, budget,
                       channels_first)


def process_id() -> int:
    return os.getpid()
