"""Run-folder artefacts: metrics CSV, PSNR-over-time plot, held-out GT-vs-render grid."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

FIELDS = ["step", "wall_s", "train_s", "data_s", "n_train", "n_eval", "loss", "psnr", "ssim",
          "depth_mae"]


def append_metrics(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in FIELDS})


def read_metrics(path: Path) -> list[dict]:
    with path.open() as fh:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in r.items()}
                for r in csv.DictReader(fh)]


def plot_psnr(rows: list[dict], path: Path, title: str = "held-out PSNR") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["wall_s"] for r in rows], [r["psnr"] for r in rows], "o-")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def eval_grid(bridge, path: Path, max_frames: int = 6) -> int:
    """Columns = held-out frames; rows = GT RGB, rendered RGB, GT depth, rendered depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = bridge.eval_frames[:max_frames]
    if not frames:
        return 0
    fig, axes = plt.subplots(4, len(frames), figsize=(2 * len(frames), 8), squeeze=False)
    for j, f in enumerate(frames):
        out = bridge.render(f.c2w, f.intrinsics)
        dmax = float(np.nanmax(f.depth)) if f.depth is not None and f.depth.any() else 3.0
        imgs = [(f.rgb, None), (out["rgb"], None),
                (f.depth if f.depth is not None else np.zeros_like(out["depth"]), dmax),
                (out["depth"], dmax)]
        for i, (img, vmax) in enumerate(imgs):
            ax = axes[i, j]
            ax.imshow(img, vmin=0, vmax=vmax, cmap="viridis" if vmax else None)
            ax.set_xticks([])
            ax.set_yticks([])
        gt = f.rgb.astype(np.float32) / 255.0
        psnr = -10 * np.log10(max(float(((out["rgb"] - gt) ** 2).mean()), 1e-10))
        axes[1, j].set_title(f"{psnr:.1f} dB", fontsize=8)
    for i, name in enumerate(["GT", "render", "GT depth", "depth"]):
        axes[i, 0].set_ylabel(name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(frames)
