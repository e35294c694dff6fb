"""``robolearn-nerf``: train a NeRF online from a posed frame stream; render views.

    robolearn-nerf train nerf/tiny out_dir=runs/nerf_tiny            # synthetic scene
    robolearn-nerf train nerf/sim source.cameras=[wrist,front]       # live MuJoCo sim
    robolearn-nerf train nerf/tiny source.kind=store source.store=posed.zarr
    robolearn-nerf train nerf/sim out_dir=runs/nerf_sim resume=true steps=600
    robolearn-nerf render runs/nerf_sim --eye 1.0,0.4,0.6 --target 0.45,0,0.05 --size 128

``train`` streams frames into the bridge while it trains (``steps_per_frame`` training
steps between frames) and writes into ``out_dir``: config.yaml, metrics.csv (held-out
PSNR/SSIM/depth error over time), psnr.png, eval_grid.png (held-out GT vs render),
points.ply and checkpoint/ (resume with ``resume=true``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _log_row(bridge, t0: float, loss: dict) -> dict:
    row = {"step": bridge.step, "wall_s": round(time.perf_counter() - t0, 2),
           "train_s": round(bridge.train_seconds, 2), "data_s": round(bridge.data_seconds, 3),
           "n_train": bridge.n_train_frames, "n_eval": len(bridge.eval_frames),
           "loss": round(sum(loss.values()), 5) if loss else ""}
    row.update({k: round(v, 4) for k, v in bridge.evaluate().items()})
    return row


def run_train(cfg) -> dict:
    """Stream the configured source into a bridge while training; write the run folder."""
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from robolearn.nerf.bridge import NerfBridge
    from robolearn.nerf.report import append_metrics, eval_grid, plot_psnr, read_metrics
    from robolearn.nerf.sources import make_source

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    ckpt = out / "checkpoint"
    if cfg.resume and (ckpt / "state.json").is_file():
        bridge = NerfBridge.load(ckpt, work_dir=out / "ns")
        print(f"resumed: {bridge.summary()}")
    else:
        bridge = NerfBridge(cfg.bridge, work_dir=out / "ns")
        (out / "metrics.csv").unlink(missing_ok=True)
    frames = make_source(cfg.source, cfg.bridge.image_width)
    consumed = bridge.n_accepted + bridge.n_rejected  # a resumed run skips what it has seen
    for _ in range(consumed):
        next(frames, None)
    t0, loss = time.perf_counter() - bridge.train_seconds - bridge.ingest_seconds, {}
    bar = tqdm(total=cfg.steps, initial=bridge.step, desc="nerf", unit="step")
    exhausted, spf = False, max(cfg.steps_per_frame, 1)
    while bridge.step < cfg.steps:
        # 1. the stream delivers a frame every `spf` steps (and until one is trainable)
        if not exhausted and (bridge.step % spf == 0 or bridge.n_train_frames == 0):
            f = next(frames, None)
            exhausted = f is None
            if f is not None:
                bridge.add_frame(f)
            if bridge.n_train_frames == 0:
                if exhausted:
                    raise SystemExit("robolearn-nerf: the source produced no usable frame "
                                     f"({bridge.n_rejected} rejected: {bridge.last_rejection})")
                continue
        # 2. one nerfstudio training iteration
        loss = bridge.train(1)
        bar.update(1)
        # 3. held-out evaluation, checkpoints
        if cfg.eval_every and bridge.step % cfg.eval_every == 0:
            row = _log_row(bridge, t0, loss)
            append_metrics(out / "metrics.csv", row)
            bar.set_postfix(psnr=row.get("psnr"), frames=bridge.n_train_frames)
        if cfg.save_every and bridge.step % cfg.save_every == 0:
            bridge.save(ckpt)
    bar.close()
    row = _log_row(bridge, t0, loss)
    if not cfg.eval_every or bridge.step % cfg.eval_every:
        append_metrics(out / "metrics.csv", row)
    bridge.save(ckpt)
    plot_psnr(read_metrics(out / "metrics.csv"), out / "psnr.png")
    eval_grid(bridge, out / "eval_grid.png")
    if cfg.export_points:
        try:
            row["points"] = bridge.export_point_cloud(out / "points.ply", cfg.export_points)
        except Exception as e:  # export is a bonus: never lose the trained run over it
            print(f"robolearn-nerf: point-cloud export failed: {e}", file=sys.stderr)
    share = 100 * bridge.data_seconds / max(bridge.train_seconds, 1e-9)
    print(f"done: {bridge.summary()}; held-out PSNR {row.get('psnr', float('nan')):.2f} dB; "
          f"data path {share:.1f}% of training time; run folder {out}")
    bridge.close()
    return row


def run_render(args) -> int:
    import numpy as np

    from robolearn.nerf.bridge import NerfBridge
    from robolearn.nerf.frames import Intrinsics
    from robolearn.nerf.synthetic import look_at

    run = Path(args.run)
    ckpt = run / "checkpoint" if (run / "checkpoint").is_dir() else run
    bridge = NerfBridge.load(ckpt)
    eye = [float(v) for v in args.eye.split(",")]
    target = [float(v) for v in args.target.split(",")]
    k = Intrinsics.from_fovy(args.fovy, args.size, args.size)
    t = time.perf_counter()
    out = bridge.render(look_at(eye, target), k)
    dt = time.perf_counter() - t
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(6, 3))
    ax[0].imshow(out["rgb"])
    ax[1].imshow(out["depth"], cmap="viridis")
    for a, name in zip(ax, ("rgb", "depth (m)")):
        a.set_title(name)
        a.axis("off")
    dest = Path(args.out or run / "view.png")
    fig.savefig(dest, dpi=100)
    np.save(dest.with_suffix(".depth.npy"), out["depth"])
    print(f"rendered {args.size}x{args.size} RGB+depth in {dt:.2f} s -> {dest}")
    bridge.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    from robolearn.config import compose_cli

    ap = argparse.ArgumentParser(prog="robolearn-nerf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train on a synthetic/sim/store frame stream")
    tr.add_argument("preset", nargs="?", default="nerf/tiny", help="preset under configs/nerf")
    tr.add_argument("overrides", nargs="*", help="hydra overrides key=value")
    rd = sub.add_parser("render", help="render RGB+depth from a trained run")
    rd.add_argument("run", help="run folder (or its checkpoint/)")
    rd.add_argument("--eye", required=True, help="camera position x,y,z (m)")
    rd.add_argument("--target", default="0.45,0,0.05", help="look-at point x,y,z (m)")
    rd.add_argument("--size", type=int, default=128)
    rd.add_argument("--fovy", type=float, default=50.0)
    rd.add_argument("--out", default="", help="PNG path (default RUN/view.png)")
    args = ap.parse_args(argv)
    if args.cmd == "render":
        return run_render(args)
    if "=" in args.preset:  # only overrides given
        args.overrides.insert(0, args.preset)
        args.preset = "nerf/tiny"
    cfg = compose_cli("robolearn-nerf", args.preset, args.overrides, "nerf")
    if cfg is None:
        return 2
    run_train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
