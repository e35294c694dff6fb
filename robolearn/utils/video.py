"""Rollout GIFs written by the CLIs (collect, eval) into their run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def write_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float, stride: int = 2) -> Path:
    """Write uint8 (H, W, 3) ``frames`` as a looping GIF that plays in real time.

    ``stride`` keeps every n-th frame and slows the frame rate to match, so a rollout keeps
    its duration at a fraction of the size.
    """
    import imageio.v2 as imageio

    if not len(frames):
        raise ValueError(f"no frames to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, list(frames)[::stride], duration=stride / fps, loop=0)
    return path
