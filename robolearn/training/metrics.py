"""Run metrics: an append-only CSV and a loss plot rendered from it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping

METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"


class MetricsLog:
    """Rows of ``{column: value}``; the header grows when a new column appears."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / METRICS_FILE
        self.rows: list[dict] = []
        if self.path.is_file():
            with self.path.open() as f:
                self.rows = [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)]

    def truncate_after(self, step: int) -> None:
        """On resume: forget rows logged after the checkpoint (they will be logged again)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]
        self._write()

    def log(self, row: Mapping[str, float]) -> None:
        self.rows.append(dict(row))
        self._write()

    def _write(self) -> None:
        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.path)

    def plot(self) -> Path | None:
        """Train (and validation) loss over steps, sim success rates when the run evaluates
        (``eval/success*`` columns) and the policy's other validation numbers (``val_*``,
        e.g. a scene head's error in cm) -> ``loss.png``."""
        if not self.rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        succ = [c for c in cols if c.startswith("eval/success")]
        extra = [c for c in cols if c.startswith("val_") and c != "val_loss"]
        panels = 1 + bool(succ) + bool(extra)
        fig, axes = plt.subplots(1, panels, figsize=(6 + 5 * (panels - 1), 4), squeeze=False)
        ax = axes[0, 0]
        for col, label in (("loss", "train"), ("val_loss", "validation")):
            pts = self._points(col)
            if pts:
                ax.plot(*zip(*pts), label=label, marker="." if len(pts) < 50 else None)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        if succ:
            ax = axes[0, 1]
            for col in succ:
                pts = [(x, 100 * y) for x, y in self._points(col)]
                ax.plot(*zip(*pts), marker="o", label=col.split("/", 1)[1])
            ax.set_xlabel("step")
            ax.set_ylabel("sim success rate (%)")
            ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
            ax.legend()
        if extra:  # the policy's own validation numbers (val_metrics), e.g. scene_err_cm
            ax = axes[0, -1]
            for col in extra:
                pts = self._points(col)
                ax.plot(*zip(*pts), marker="." if len(pts) < 50 else None, label=col[4:])
            ax.set_xlabel("step")
            ax.set_ylabel("validation")
            ax.grid(alpha=0.3)
            ax.legend()
        out = self.path.parent / PLOT_FILE
        fig.tight_layout()
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out

    def _points(self, col: str) -> list[tuple[float, float]]:
        return [(float(r["step"]), float(r[col])) for r in self.rows if col in r]
