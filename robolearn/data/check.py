"""Validate a store end to end: format, schema, episode index, metadata, every chunk.

Problems are reported by name (array, chunk, step range, episode) so a user can find
and fix them; ``check_store`` never writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from robolearn import keys as K
from robolearn.data.errors import StoreError
from robolearn.data.store import EPISODE_ENDS, EPISODE_META, TrajectoryStore, _local_path, is_remote


@dataclass
class CheckReport:
    url: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_episodes: int = 0
    n_steps: int = 0
    chunks_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def check_store(url: str, storage_options=None, check_chunks: bool = True) -> CheckReport:
    rep = CheckReport(str(url))
    try:
        store = TrajectoryStore.open(url, "r", storage_options)
    except StoreError as e:
        rep.errors.append(str(e))
        return rep
    rep.n_episodes, rep.n_steps = store.n_episodes, store.n_steps
    group = store._group
    schema = store.schema
    if schema is None:
        if store.n_episodes:
            rep.errors.append("root attrs have no 'schema' but episodes are committed")
        else:
            rep.warnings.append("store is empty (no episodes)")
        return rep

    # 1. arrays exist and match the schema
    for key, spec in schema.specs.items():
        try:
            arr = group[f"data/{key}"]
        except KeyError:
            rep.errors.append(f"data/{key}: array missing (schema lists it)")
            continue
        if tuple(arr.shape[1:]) != spec.shape:
            rep.errors.append(f"data/{key}: per-step shape {tuple(arr.shape[1:])} != schema {spec.shape}")
        if arr.shape[0] < store.n_steps:
            rep.errors.append(f"data/{key}: {arr.shape[0]} steps < {store.n_steps} committed")

    # 2. episode_ends: the raw array must equal the committed prefix (+ at most a crash artifact)
    raw = group[EPISODE_ENDS][:]
    if len(raw) > store.n_episodes:
        bad_i = store.n_episodes
        msg = (f"meta/episode_ends[{bad_i}] = {int(raw[bad_i])} is invalid (must be > "
               f"{int(raw[bad_i - 1]) if bad_i else 0} and <= the data length)")
        if bad_i == len(raw) - 1 and raw[bad_i] == 0:
            rep.warnings.append(msg + ": an interrupted append; the next writer drops it")
        else:
            rep.errors.append(msg + f"; {len(raw) - bad_i} episode(s) after it are unreadable")
    if np.any(store.episode_lengths <= 0):
        rep.errors.append("meta/episode_ends has empty episodes")

    # 3. per-episode metadata
    raw_meta = group[EPISODE_META][: store.n_episodes]
    for i, s in enumerate(raw_meta):
        try:
            m = json.loads(s)
        except (json.JSONDecodeError, TypeError):
            rep.errors.append(f"meta/episode_meta[{i}] is not valid JSON")
            continue
        missing = [k for k in K.REQUIRED_META if k not in m]
        if missing:
            rep.errors.append(f"episode {i}: metadata misses {missing}")

    # 4. every chunk decodes; numeric sanity
    if check_chunks:
        _check_chunks(store, rep)
    if not is_remote(url):
        partial = list(_local_path(url).rglob("*.partial"))
        if partial:
            rep.warnings.append(f"{len(partial)} temporary file(s) from an interrupted write "
                                f"(removed by the next writer)")
    return rep


def _check_chunks(store: TrajectoryStore, rep: CheckReport) -> None:
    schema = store.schema
    starts = store.episode_starts
    for key, spec in schema.specs.items():
        try:
            arr = store.array(key)
        except KeyError:
            continue
        cs = arr.chunks[0]
        for start in range(0, store.n_steps, cs):
            stop = min(start + cs, store.n_steps)
            rep.chunks_checked += 1
            try:
                block = np.asarray(arr[start:stop])
            except Exception as e:  # noqa: BLE001 - codec errors come in many types
                rep.errors.append(f"data/{key} chunk {start // cs} (steps {start}..{stop - 1}): "
                                  f"cannot be decoded ({type(e).__name__}: {str(e)[:80]}); "
                                  f"restore it from a copy or drop episodes in that range")
                continue
            if key in (K.ACTION, K.OBS_STATE) and block.dtype.kind == "f":
                bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
                if bad.any():
                    step = start + int(np.argmax(bad))
                    ep = int(np.searchsorted(starts, step, side="right") - 1)
                    rep.errors.append(f"data/{key}: NaN/inf at step {step} (episode {ep})")
