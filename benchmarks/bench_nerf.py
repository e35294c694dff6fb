"""NeRF bridge benchmark (CPU-sized).  Prints ratios measured in the same run.

    python benchmarks/bench_nerf.py                  # synthetic scene, ~5 min on 2 idle cores
    python benchmarks/bench_nerf.py --source sim     # MuJoCo tabletop, wrist + front camera
    python benchmarks/bench_nerf.py --only render    # just the 128x128 render latency

1. online vs offline: the bridge (frames streamed in while it trains) against nerfstudio's
   own Trainer + VanillaDataManager + Nerfstudio dataparser on the same frames written as
   a nerfstudio dataset, same nerfacto config and seed.  The two run *interleaved* (one
   step each, alternately) so machine load hits both alike; each is timed on its own.
   Reported: held-out PSNR vs own wall time, and PSNR_online / PSNR_offline at equal time.
2. data path: time validating/storing frames + sampling rays, as % of training time.
3. recency vs uniform frame sampling on an exploring stream (the camera keeps turning to
   unseen parts of the scene): PSNR on the newest quarter of the held-out views and on all.
4. render latency of a 128x128 RGB+depth view.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def frames_for(args):
    from robolearn.nerf import synthetic as S

    if args.source == "sim":
        from robolearn.nerf.sim_source import SimCameraStream

        stream = SimCameraStream("panda", args.size, ("wrist", "front"))
        frames = [sf.frame for sf in stream.frames(args.frames // 2)]
        stream.close()
        args.scale = 1.0
        return frames, [0.45, 0.0, 0.1]
    return list(S.orbit_stream(args.frames, args.size, sweep=args.sweep)), [0.0, 0.0, 0.1]


def bridge_config(args, center, **kw):
    from robolearn.nerf.config import NerfBridgeConfig

    base = dict(image_width=args.size, image_height=args.size, scene_center=center,
                scene_scale=args.scale, rays_per_batch=args.rays, eval_every_k=args.k,
                max_eval_frames=64, max_frames=256, seed=0)
    base.update(kw)
    return NerfBridgeConfig(**base)


class Offline:
    """nerfstudio's offline pipeline on the bridge's training frames."""

    def __init__(self, bridge, train_frames, work: Path):
        import torch
        from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
        from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

        from robolearn.nerf.export import write_nerfstudio_dataset
        from robolearn.nerf.model import trainer_config

        data = write_nerfstudio_dataset(train_frames, work / "data", bridge.to_nerf_pose)
        parser = NerfstudioDataParserConfig(data=data, orientation_method="none",
                                            center_method="none", auto_scale_poses=False,
                                            eval_mode="all", downscale_factor=1)
        dm = VanillaDataManagerConfig(dataparser=parser,
                                      train_num_rays_per_batch=bridge.cfg.rays_per_batch)
        torch.manual_seed(bridge.cfg.seed)
        self.trainer = trainer_config(dm, bridge.cfg.model, bridge.cfg.rays_per_batch, "cpu",
                                      work / "ns").setup(local_rank=0, world_size=1)
        self.trainer.setup()
        self.step, self.seconds = 0, 0.0
        from nerfstudio.engine.callbacks import TrainingCallbackLocation as W

        self._w = W

    def train(self, n=1):
        t = time.perf_counter()
        for _ in range(n):
            for cb in self.trainer.callbacks:
                cb.run_callback_at_location(self.step, location=self._w.BEFORE_TRAIN_ITERATION)
            self.trainer.train_iteration(self.step)
            for cb in self.trainer.callbacks:
                cb.run_callback_at_location(self.step, location=self._w.AFTER_TRAIN_ITERATION)
            self.step += 1
        self.seconds += time.perf_counter() - t

    def psnr(self, bridge, frames):
        from robolearn.nerf.bridge import render_camera

        model = self.trainer.pipeline.model
        model.eval()
        vals = []
        for f in frames:
            out = render_camera(model, bridge._camera(f.c2w, f.intrinsics), bridge.scale)
            mse = float(((out["rgb"] - f.rgb / 255.0) ** 2).mean())
            vals.append(-10 * np.log10(mse))
        model.train()
        return float(np.mean(vals))


def online_vs_offline(args, frames, center, work: Path) -> dict:
    from robolearn.nerf.bridge import NerfBridge

    bridge = NerfBridge(bridge_config(args, center), work_dir=work / "online")
    k = args.k
    train_frames = [f for i, f in enumerate(frames) if i % k != k - 1]
    held_out = [f for i, f in enumerate(frames) if i % k == k - 1]
    offline = Offline(bridge, train_frames, work / "offline")
    stream, curve_on, curve_off = iter(frames), [], []
    spf = max(1, args.steps // len(frames)) if args.steps_per_frame == 0 else args.steps_per_frame
    for step in range(args.steps):
        # online: the next frame arrives every `spf` steps, then one training step
        t = time.perf_counter()
        if step % spf == 0 or bridge.n_train_frames == 0:
            for f in stream:
                bridge.add_frame(f)
                if bridge.n_train_frames:
                    break
        bridge.train(1)
        bridge_wall = time.perf_counter() - t
        offline.train(1)
        curve_on.append(bridge_wall)
        if (step + 1) % args.eval_every == 0:
            r_on = bridge.evaluate(held_out)["psnr"]
            r_off = offline.psnr(bridge, held_out)
            t_on = bridge.train_seconds + bridge.ingest_seconds
            curve_off.append((step + 1, t_on, r_on, offline.seconds, r_off))
            print(f"  step {step + 1:4d}  online {t_on:7.1f} s {r_on:6.2f} dB | offline "
                  f"{offline.seconds:7.1f} s {r_off:6.2f} dB", flush=True)
    last = curve_off[-1]
    t_eq = min(last[1], last[3])
    on_t = [c[1] for c in curve_off]
    off_t = [c[3] for c in curve_off]
    psnr_on_eq = float(np.interp(t_eq, on_t, [c[2] for c in curve_off]))
    psnr_off_eq = float(np.interp(t_eq, off_t, [c[4] for c in curve_off]))
    res = {"curve": curve_off, "equal_time_s": t_eq, "psnr_online": psnr_on_eq,
           "psnr_offline": psnr_off_eq, "ratio": psnr_on_eq / psnr_off_eq,
           "data_path_s": bridge.data_seconds, "train_s": bridge.train_seconds,
           "data_path_pct": 100 * bridge.data_seconds / bridge.train_seconds,
           "s_per_step_online": bridge.train_seconds / bridge.step,
           "s_per_step_offline": offline.seconds / offline.step,
           "n_train_frames": bridge.n_train_frames, "n_held_out": len(held_out)}
    bridge.close()
    return res


def recency_vs_uniform(args, center, work: Path) -> dict:
    """An exploring stream: one slow orbit sweep; frames arrive faster than training covers
    them.  Measured at the end of the stream on the newest quarter of held-out views."""
    from robolearn.nerf import synthetic as S
    from robolearn.nerf.bridge import NerfBridge

    frames = list(S.orbit_stream(args.frames, args.size, sweep=2 * np.pi))
    k = args.k
    held = [f for i, f in enumerate(frames) if i % k == k - 1]
    newest = held[-max(1, len(held) // 4):]
    bridges = {m: NerfBridge(bridge_config(args, center, sampling=m, eval_every_k=0),
                             work_dir=work / m) for m in ("recency", "uniform")}
    steps = args.explore_steps
    spf = max(1, steps // len(frames))
    stream = [f for i, f in enumerate(frames) if i % k != k - 1]
    it = {m: iter(stream) for m in bridges}
    for step in range(steps):
        for m, b in bridges.items():  # interleaved: same load on both
            if step % spf == 0 or b.n_train_frames == 0:
                f = next(it[m], None)
                if f is not None:
                    b.add_frame(f)
            b.train(1)
    res = {}
    for m, b in bridges.items():
        res[m] = {"psnr_newest": b.evaluate(newest)["psnr"], "psnr_all": b.evaluate(held)["psnr"],
                  "frames_seen": b.n_train_frames}
        b.close()
    res["delta_newest_db"] = res["recency"]["psnr_newest"] - res["uniform"]["psnr_newest"]
    res["delta_all_db"] = res["recency"]["psnr_all"] - res["uniform"]["psnr_all"]
    return res


def render_latency(args, frames, center, work: Path) -> dict:
    from robolearn.nerf.bridge import NerfBridge
    from robolearn.nerf.frames import Intrinsics
    from robolearn.nerf.synthetic import orbit_pose

    b = NerfBridge(bridge_config(args, center), work_dir=work / "render")
    for f in frames[:8]:
        b.add_frame(f)
    b.train(5)
    k = Intrinsics.from_fovy(50.0, 128, 128)
    times = []
    for a in (0.3, 1.3, 2.3):
        t = time.perf_counter()
        out = b.render(orbit_pose(a), k)
        times.append(time.perf_counter() - t)
    b.close()
    assert out["rgb"].shape == (128, 128, 3) and out["depth"].shape == (128, 128)
    return {"render_128_s_median": float(np.median(times)), "all_s": times,
            "rays_per_s": 128 * 128 / float(np.median(times))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=["synthetic", "sim"], default="synthetic")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=72)
    ap.add_argument("--sweep", type=float, default=2 * np.pi)
    ap.add_argument("--rays", type=int, default=256)
    ap.add_argument("--scale", type=float, default=0.9, help="nerf units per metre")
    ap.add_argument("--k", type=int, default=6, help="every k-th frame is held out")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--steps-per-frame", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--explore-steps", type=int, default=300)
    ap.add_argument("--only", choices=["all", "online", "recency", "render"], default="all")
    ap.add_argument("--json", default="", help="also write results here")
    args = ap.parse_args(argv)

    import torch

    from robolearn.nerf.tv_hook import ensure_torchvision

    ensure_torchvision()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-nerf-") as tmp:
        work = Path(tmp)
        frames, center = frames_for(args)
        if args.only in ("all", "render"):
            r = render_latency(args, frames, center, work)
            results["render"] = r
            print(f"render 128x128 RGB+depth: {r['render_128_s_median']:.2f} s median "
                  f"({r['rays_per_s']:.0f} rays/s)", flush=True)
        if args.only in ("all", "online"):
            print("online bridge vs nerfstudio offline trainer (interleaved):", flush=True)
            r = online_vs_offline(args, frames, center, work)
            results["online_vs_offline"] = r
            print(f"PSNR at equal wall time {r['equal_time_s']:.0f} s: online "
                  f"{r['psnr_online']:.2f} dB, offline {r['psnr_offline']:.2f} dB, ratio "
                  f"{r['ratio']:.3f} (target >= 0.9)")
            print(f"data path: {r['data_path_s']:.2f} s of {r['train_s']:.1f} s training = "
                  f"{r['data_path_pct']:.2f}% (target < 10%); s/step online "
                  f"{r['s_per_step_online']:.2f}, offline {r['s_per_step_offline']:.2f}",
                  flush=True)
        if args.only in ("all", "recency"):
            r = recency_vs_uniform(args, center, work)
            results["recency_vs_uniform"] = r
            print(f"exploring stream, PSNR on newest held-out views: recency "
                  f"{r['recency']['psnr_newest']:.2f} dB vs uniform "
                  f"{r['uniform']['psnr_newest']:.2f} dB (delta {r['delta_newest_db']:+.2f}); "
                  f"all views: {r['recency']['psnr_all']:.2f} vs {r['uniform']['psnr_all']:.2f}"
                  f" (delta {r['delta_all_db']:+.2f})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
