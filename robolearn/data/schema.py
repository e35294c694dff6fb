"""Store schema: which per-step keys an episode has, their dtype and per-step shape.

The schema is fixed by the first episode written (or given when the store is created)
and recorded in the store's root attributes, so every later episode is checked against
it before a byte is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from robolearn import keys as K
from robolearn.data.errors import EpisodeValidationError

FORMAT_NAME = "robolearn.trajectory_store"
#: bump when the on-disk layout changes; readers refuse newer versions
FORMAT_VERSION = 1

#: dtype name used for per-step text annotations (zarr variable-length UTF-8 strings)
TEXT_DTYPE = "str"


@dataclass(frozen=True)
class KeySpec:
    """One per-step array: ``dtype`` and the shape of a single step (``()`` for scalars)."""

    key: str
    dtype: str
    shape: tuple[int, ...] = ()

    @property
    def is_image(self) -> bool:
        return K.is_image_key(self.key)

    @property
    def is_text(self) -> bool:
        return self.dtype == TEXT_DTYPE

    @property
    def step_nbytes(self) -> int:
        if self.is_text:
            return 0
        return int(np.dtype(self.dtype).itemsize * math.prod(self.shape))

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, key: str, d: Mapping[str, Any]) -> "KeySpec":
        return cls(key=key, dtype=str(d["dtype"]), shape=tuple(int(s) for s in d["shape"]))


@dataclass
class Schema:
    """The per-step keys of a store, in a stable order."""

    specs: dict[str, KeySpec] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.specs

    def __getitem__(self, key: str) -> KeySpec:
        return self.specs[key]

    @property
    def keys(self) -> list[str]:
        return list(self.specs)

    @property
    def image_keys(self) -> list[str]:
        return [k for k, s in self.specs.items() if s.is_image]

    @property
    def text_keys(self) -> list[str]:
        return [k for k, s in self.specs.items() if s.is_text]

    @property
    def lowdim_keys(self) -> list[str]:
        return [k for k, s in self.specs.items() if not s.is_image and not s.is_text]

    def to_json(self) -> dict[str, Any]:
        return {k: s.to_json() for k, s in self.specs.items()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Schema":
        return cls({k: KeySpec.from_json(k, v) for k, v in d.items()})

    @classmethod
    def infer(cls, steps: Mapping[str, Any]) -> "Schema":
        """Build a schema from the first episode (see :func:`normalise_steps`)."""
        specs = {}
        for key, arr in steps.items():
            if key in K.TEXT_STEP_KEYS:
                specs[key] = KeySpec(key, TEXT_DTYPE, ())
            else:
                specs[key] = KeySpec(key, str(arr.dtype), tuple(arr.shape[1:]))
        return cls(specs)


def text_array(values) -> np.ndarray:
    """A 1-D array of Python strings: numpy 2's variable-length StringDType, or an object
    array on numpy 1.x (nerfstudio's dependencies still pin numpy < 2)."""
    dtype = np.dtypes.StringDType() if hasattr(np.dtypes, "StringDType") else object
    return np.array(list(values), dtype=dtype)


def _as_text(key: str, value: Any, length: int) -> np.ndarray:
    if isinstance(value, str):
        return text_array([value] * length)
    arr = np.asarray(value)
    if arr.ndim != 1 or not (arr.dtype.kind in "UOT"):
        raise EpisodeValidationError(
            f"{key!r} must be one string per step (or one string for the episode); "
            f"got array of dtype {arr.dtype} and shape {arr.shape}")
    for v in arr:
        if not isinstance(v, str):
            raise EpisodeValidationError(f"{key!r} holds a non-string value {v!r}; pass strings")
    return text_array(str(v) for v in arr)


def normalise_steps(steps: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Turn user input into numpy arrays, time-major, and check the basic invariants.

    Raises :class:`EpisodeValidationError` naming the key and the fix for: missing
    required keys, mismatched lengths, empty episodes, bad image dtype/shape and
    non-finite actions/states.
    """
    missing = [k for k in K.REQUIRED_STEP_KEYS if k not in steps]
    if missing:
        raise EpisodeValidationError(
            f"episode is missing required key(s) {missing}; every episode needs "
            f"{list(K.REQUIRED_STEP_KEYS)} (use robolearn.keys constants)")
    length = len(steps[K.ACTION])
    if length == 0:
        raise EpisodeValidationError("episode has 0 steps; append episodes with at least one step")
    out: dict[str, np.ndarray] = {}
    for key, value in steps.items():
        if key in K.TEXT_STEP_KEYS:
            arr = _as_text(key, value, length)
        else:
            arr = np.asarray(value)
            if arr.dtype == object or arr.dtype.kind in "UST":
                raise EpisodeValidationError(
                    f"{key!r} has dtype {arr.dtype}; numeric arrays only (text goes in "
                    f"{list(K.TEXT_STEP_KEYS)})")
            if arr.ndim == 0:
                raise EpisodeValidationError(f"{key!r} is a scalar; pass one value per step")
        if len(arr) != length:
            raise EpisodeValidationError(
                f"{key!r} has {len(arr)} steps but {K.ACTION!r} has {length}; all per-step "
                f"arrays of an episode must have the same length")
        if K.is_image_key(key):
            if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
                raise EpisodeValidationError(
                    f"{key!r} must be uint8 of shape (T, H, W, 3); got {arr.dtype} {arr.shape} "
                    f"(convert with (img * 255).astype(np.uint8) and put channels last)")
        elif arr.dtype.kind == "f" and key in (K.ACTION, K.OBS_STATE, K.REWARD):
            bad = ~np.isfinite(arr)
            if bad.any():
                step = int(np.argwhere(bad.reshape(length, -1).any(axis=1))[0, 0])
                raise EpisodeValidationError(
                    f"{key!r} contains NaN/inf (first at step {step}); fix the source of the "
                    f"data or drop the episode - nothing was written")
        out[key] = arr
    out[K.DONE] = out[K.DONE].astype(bool)
    return out


def check_against_schema(schema: Schema, steps: Mapping[str, np.ndarray]) -> None:
    """Every key of the schema present, no extra keys, same dtype and per-step shape."""
    missing = [k for k in schema.keys if k not in steps]
    extra = [k for k in steps if k not in schema]
    if missing or extra:
        raise EpisodeValidationError(
            f"episode keys differ from the store schema: missing {missing}, unexpected {extra}; "
            f"a store holds episodes with identical keys (write other keys to another store)")
    for key, spec in schema.specs.items():
        arr = steps[key]
        if spec.is_text:
            continue
        if tuple(arr.shape[1:]) != spec.shape:
            raise EpisodeValidationError(
                f"{key!r} has per-step shape {tuple(arr.shape[1:])}, the store expects "
                f"{spec.shape}; resize/pad it to match")
        if np.dtype(arr.dtype) != np.dtype(spec.dtype):
            if arr.dtype.kind == np.dtype(spec.dtype).kind and not spec.is_image:
                continue  # same kind (e.g. float64 -> float32) is cast on write
            raise EpisodeValidationError(
                f"{key!r} has dtype {arr.dtype}, the store expects {spec.dtype}; cast it first")


def normalise_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per-episode metadata: required fields present, JSON-serialisable."""
    meta = dict(meta or {})
    missing = [k for k in K.REQUIRED_META if k not in meta]
    if missing:
        raise EpisodeValidationError(
            f"episode metadata is missing {missing}; pass meta={{...}} with "
            f"{list(K.REQUIRED_META)}")
    meta[K.META_SUCCESS] = bool(meta[K.META_SUCCESS])
    meta[K.META_FPS] = float(meta[K.META_FPS])
    if not meta[K.META_FPS] > 0:
        raise EpisodeValidationError(f"fps must be > 0, got {meta[K.META_FPS]}")
    try:
        json.dumps(meta)
    except TypeError as e:
        raise EpisodeValidationError(f"episode metadata must be JSON-serialisable: {e}") from e
    return meta
