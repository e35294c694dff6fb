"""Dataset converters into robolearn trajectory stores: one registry, looked up by name.

Every converter streams its input episode by episode (memory bounded by one episode),
shows progress, validates the store it wrote with :func:`robolearn.data.check.check_store`
and returns a :class:`ConvertReport` saying what was written, dropped, and why.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

#: converter name -> "module:function"; the function takes (src, dst, **options)
CONVERTERS: dict[str, str] = {
    "robomimic": "robolearn.data.convert.robomimic:convert_robomimic",
    "rosbag": "robolearn.data.convert.rosbag:convert_rosbag",
    "lerobot": "robolearn.data.convert.lerobot:convert_lerobot",
}
#: exporter name -> "module:function"; the function takes (store, dst, **options)
EXPORTERS: dict[str, str] = {
    "lerobot": "robolearn.data.convert.lerobot:export_lerobot",
}


@dataclass
class ConvertReport:
    """What a conversion did: episodes/steps written, and everything it left out."""

    source: str
    store: str
    episodes: int = 0
    steps: int = 0
    frames_per_s: float = 0.0
    dropped_episodes: list[str] = field(default_factory=list)
    dropped_keys: list[str] = field(default_factory=list)
    dropped_steps: int = 0
    notes: list[str] = field(default_factory=list)
    check_ok: bool = False
    check_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"wrote {self.episodes} episodes ({self.steps} steps) from {self.source} to "
                 f"{self.store} at {self.frames_per_s:.0f} steps/s; check "
                 + ("OK" if self.check_ok else "FAILED: " + "; ".join(self.check_errors))]
        if self.dropped_episodes:
            lines.append(f"dropped {len(self.dropped_episodes)} episode(s): "
                         + "; ".join(self.dropped_episodes[:10])
                         + (" ..." if len(self.dropped_episodes) > 10 else ""))
        if self.dropped_steps:
            lines.append(f"dropped {self.dropped_steps} step(s) with a required stream missing")
        if self.dropped_keys:
            lines.append("not converted: " + ", ".join(self.dropped_keys))
        lines += self.notes
        return "\n".join(lines)


def _lookup(table: dict[str, str], kind: str, name: str) -> Callable[..., ConvertReport]:
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; available: {', '.join(sorted(table))}")
    module, fn = table[name].split(":")
    return getattr(importlib.import_module(module), fn)


def get_converter(name: str) -> Callable[..., ConvertReport]:
    """An importer into a store (``robolearn-data convert NAME``)."""
    return _lookup(CONVERTERS, "converter", name)


def get_exporter(name: str) -> Callable[..., ConvertReport]:
    """An exporter from a store (``robolearn-data export NAME``)."""
    return _lookup(EXPORTERS, "exporter", name)


def append_or_drop(store, report: ConvertReport, label: str, build: Callable[[], tuple]) -> bool:
    """Append the episode ``build()`` returns as (steps, meta) to ``store`` and count it in
    ``report``; an episode that fails to build or validate is dropped, with ``label`` and
    the reason in the report, and nothing of it is written."""
    from robolearn import keys as K
    from robolearn.data.errors import EpisodeValidationError

    try:
        steps, meta = build()
        store.append_episode(steps, meta)
    except (EpisodeValidationError, KeyError, ValueError) as e:
        report.dropped_episodes.append(f"{label}: {e}")
        return False
    report.episodes += 1
    report.steps += len(steps[K.ACTION])
    return True


def compare_stores(a, b) -> dict:
    """How well store ``b`` reproduces store ``a`` (a round trip through another format),
    episode by episode: the non-image keys that are bit-exact, whether the episode
    metadata is identical, and the images' PSNR per episode and camera (mean, min; None
    without cameras) and whether they are bit-exact."""
    import numpy as np

    schema = a.schema
    lowdim = [k for k in schema.keys if not schema[k].is_image]
    exact = dict.fromkeys(lowdim, a.n_episodes == b.n_episodes)
    psnr, images_exact = [], True
    for i in range(min(a.n_episodes, b.n_episodes)):
        x, y = a.get_episode(i), b.get_episode(i)
        for k in schema.keys:
            if k not in y:
                exact[k] = False
            elif schema[k].is_image:
                images_exact &= bool(np.array_equal(x[k], y[k]))
                mse = float(np.mean((x[k].astype(np.float64) - y[k].astype(np.float64)) ** 2))
                psnr.append(10 * np.log10(255 ** 2 / max(mse, 1e-12)))
            else:
                exact[k] &= bool((x[k] == y[k]).all() if schema[k].is_text
                                 else np.array_equal(x[k], y[k]))
    return {"lowdim_keys": lowdim, "exact_keys": [k for k in lowdim if exact[k]],
            "metadata_exact": a.all_episode_meta() == b.all_episode_meta(),
            "images_exact": images_exact and bool(psnr),
            "psnr_db_mean": float(np.mean(psnr)) if psnr else None,
            "psnr_db_min": float(np.min(psnr)) if psnr else None}


def resize_frames(frames, size: int | None):
    """(T, H, W, 3) uint8 frames resized to a ``size`` square (bilinear); unchanged if None."""
    import numpy as np

    if not size or frames.shape[1:3] == (size, size):
        return frames
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR))
                     for f in frames])


def finish(report: ConvertReport, storage_options: dict[str, Any] | None = None) -> ConvertReport:
    """Validate the written store and record the result in the report."""
    from robolearn.data.check import check_store

    rep = check_store(report.store, storage_options)
    report.check_ok, report.check_errors = rep.ok, rep.errors
    return report
