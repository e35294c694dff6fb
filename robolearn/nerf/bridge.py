"""The online NeRF bridge: posed frames in, a nerfstudio nerfacto trained while they arrive,
renders / depth / density queries out.

    bridge = NerfBridge(NerfBridgeConfig(image_width=64, image_height=64))
    for frame in stream:                 # Frame(rgb, c2w, intrinsics, timestamp, depth)
        bridge.add_frame(frame)          # bad frames are rejected with a warning, not raised
        bridge.train(2)                  # nerfstudio Trainer.train_iteration + callbacks
    out = bridge.render(c2w, intrinsics) # {"rgb": (H, W, 3), "depth": (H, W) z-depth, metres}
    bridge.save("run/checkpoint"); NerfBridge.load("run/checkpoint")

World coordinates (metres) map to nerf units by ``(p - scene_center) * scene_scale``; every
public method takes and returns world units.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robolearn.nerf.buffer import FrameBuffer
from robolearn.nerf.config import NerfBridgeConfig
from robolearn.nerf.frames import Frame, FrameError, Intrinsics, validate_frame

log = logging.getLogger(__name__)


class NerfBridge:
    """Streaming nerfstudio training; see the module docstring."""

    def __init__(self, cfg: NerfBridgeConfig, work_dir: str | Path | None = None,
                 viewer: bool = False):
        from nerfstudio.engine.callbacks import TrainingCallbackLocation

        from robolearn.nerf.datamanager import StreamingDataManagerConfig
        from robolearn.nerf.model import resolve_device, trainer_config

        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self._rng = random.Random(cfg.seed)
        self.buffer = FrameBuffer(cfg.image_width, cfg.image_height, cfg.memory_budget_mb,
                                  with_depth=True, protect_recent=cfg.protect_recent,
                                  rot_weight=cfg.rot_weight, max_frames=cfg.max_frames)
        self.center = np.asarray(cfg.scene_center, dtype=np.float64)
        self.scale = float(cfg.scene_scale)
        dm = StreamingDataManagerConfig(capacity=self.buffer.capacity, width=cfg.image_width,
                                        height=cfg.image_height, seed=cfg.seed,
                                        train_num_rays_per_batch=cfg.rays_per_batch)
        self._tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="robolearn-nerf-")
        work = Path(work_dir) if work_dir else Path(self._tmp.name)
        self.trainer = trainer_config(dm, cfg.model, cfg.rays_per_batch, self.device, work,
                                      viewer).setup(local_rank=0, world_size=1)
        self.trainer.setup()
        self.pipeline = self.trainer.pipeline
        self.model = self.pipeline.model
        self.dm = self.pipeline.datamanager
        self.dm.share_images(self.buffer.rgb)
        self._where = TrainingCallbackLocation
        self.eval_frames: list[Frame] = []
        self.step = 0
        self.n_accepted = 0
        self.n_rejected = 0
        self.last_rejection = ""
        self.ingest_seconds = 0.0
        self.train_seconds = 0.0

    # ------------------------------------------------------------------ coordinates
    def to_nerf_pose(self, c2w: np.ndarray) -> np.ndarray:
        out = np.array(c2w, dtype=np.float64)
        out[:3, 3] = (out[:3, 3] - self.center) * self.scale
        return out

    def to_nerf_points(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=np.float64) - self.center) * self.scale

    def to_world_points(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(p, dtype=np.float64) / self.scale + self.center

    # ------------------------------------------------------------------ ingest
    def add_frame(self, frame: Frame) -> bool:
        """Validate and store one frame; False (and a warning) if it was rejected.

        Every ``eval_every_k``-th accepted frame goes to the held-out split instead.
        """
        t0 = time.perf_counter()
        try:
            f = validate_frame(frame, self.cfg.image_width, self.cfg.image_height,
                               self.cfg.rot_tol)
        except FrameError as e:
            self.n_rejected += 1
            self.last_rejection = str(e)
            log.warning("nerf: rejected frame t=%.3f: %s", float(frame.timestamp), e)
            return False
        k = self.cfg.eval_every_k
        if k > 0 and self.n_accepted % k == k - 1:
            self._add_eval(f)
        else:
            slot, _ = self.buffer.add(f)
            self.dm.write_slot(slot, f.rgb, self.to_nerf_pose(f.c2w),
                               f.intrinsics.as_array())
            self._refresh_weights()
        self.n_accepted += 1
        self.ingest_seconds += time.perf_counter() - t0
        return True

    def _add_eval(self, f: Frame) -> None:
        """Reservoir sample of the held-out stream, at most ``max_eval_frames``."""
        n_seen = self.n_accepted // self.cfg.eval_every_k + 1
        if len(self.eval_frames) < self.cfg.max_eval_frames:
            self.eval_frames.append(f)
        else:
            j = self._rng.randrange(n_seen)
            if j < self.cfg.max_eval_frames:
                self.eval_frames[j] = f

    def _refresh_weights(self) -> None:
        c = self.cfg
        self.dm.set_weights(self.buffer.sampling_weights(c.sampling, c.recent_fraction,
                                                         c.recency_tau))

    @property
    def n_train_frames(self) -> int:
        return len(self.buffer)

    # ------------------------------------------------------------------ training
    def train(self, n_steps: int = 1) -> dict:
        """Run ``n_steps`` of nerfstudio's ``Trainer.train_iteration`` (with the model's
        callbacks, as ``Trainer.train`` does); returns the last loss dict as floats."""
        if self.n_train_frames == 0:
            return {}
        t0 = time.perf_counter()
        self.pipeline.train()
        loss_dict: dict = {}
        for _ in range(n_steps):
            for cb in self.trainer.callbacks:
                cb.run_callback_at_location(self.step, location=self._where.BEFORE_TRAIN_ITERATION)
            loss, loss_dict, _ = self.trainer.train_iteration(self.step)
            for cb in self.trainer.callbacks:
                cb.run_callback_at_location(self.step, location=self._where.AFTER_TRAIN_ITERATION)
            self.step += 1
        self.train_seconds += time.perf_counter() - t0
        return {k: float(v) for k, v in loss_dict.items()}

    @property
    def data_seconds(self) -> float:
        """Time spent in the data path: validating/storing frames + sampling rays."""
        return self.ingest_seconds + self.dm.sample_seconds

    # ------------------------------------------------------------------ queries
    def _camera(self, c2w: np.ndarray, k: Intrinsics):
        from nerfstudio.cameras.cameras import Cameras, CameraType

        pose = torch.as_tensor(self.to_nerf_pose(c2w)[:3], dtype=torch.float32)[None]
        return Cameras(camera_to_worlds=pose, fx=k.fx, fy=k.fy, cx=k.cx, cy=k.cy,
                       width=k.width, height=k.height,
                       camera_type=CameraType.PERSPECTIVE).to(self.device)

    def render(self, c2w: np.ndarray, intrinsics: Intrinsics) -> dict:
        """Render from an arbitrary OpenGL camera-to-world pose (metres) with the latest
        weights: ``rgb`` (H, W, 3) float [0, 1], ``depth`` (H, W) z-depth in metres,
        ``accumulation`` (H, W) opacity."""
        self.pipeline.eval()
        out = render_camera(self.model, self._camera(c2w, intrinsics), self.scale)
        self.pipeline.train()
        return out

    @torch.no_grad()
    def density(self, points: np.ndarray) -> np.ndarray:
        """Volume density (1/m) at world points (N, 3)."""
        self.pipeline.eval()
        p = torch.as_tensor(self.to_nerf_points(points), dtype=torch.float32, device=self.device)
        sigma = []
        for chunk in torch.split(p, 65536):
            sigma.append(self.model.field.density_fn(chunk[:, None, :])[:, 0, 0])
        self.pipeline.train()
        return torch.cat(sigma).cpu().numpy() * self.scale

    def occupancy(self, points: np.ndarray, voxel: float = 0.01) -> np.ndarray:
        """Probability that a ray crossing a ``voxel``-metre cell at each point stops there:
        ``1 - exp(-sigma * voxel)`` in [0, 1]."""
        return 1.0 - np.exp(-self.density(points) * voxel)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, frames: list[Frame] | None = None) -> dict:
        """Mean PSNR / SSIM / depth MAE (m, where ground-truth depth > 0) on the held-out split."""
        from torchmetrics.functional import structural_similarity_index_measure as ssim

        frames = self.eval_frames if frames is None else frames
        if not frames:
            return {}
        psnr, ss, dmae = [], [], []
        for f in frames:
            out = self.render(f.c2w, f.intrinsics)
            gt = f.rgb.astype(np.float32) / 255.0
            mse = float(((out["rgb"] - gt) ** 2).mean())
            psnr.append(-10.0 * np.log10(max(mse, 1e-10)))
            a = torch.from_numpy(out["rgb"]).permute(2, 0, 1)[None]
            b = torch.from_numpy(gt).permute(2, 0, 1)[None]
            ss.append(float(ssim(a, b, data_range=1.0)))
            if f.depth is not None and (f.depth > 0).any():
                m = f.depth > 0
                dmae.append(float(np.abs(out["depth"][m] - f.depth[m]).mean()))
        res = {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ss))}
        if dmae:
            res["depth_mae"] = float(np.mean(dmae))
        return res

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Checkpoint (no pickles): ``model.safetensors`` (weights + optimizer moments),
        ``frames.safetensors`` (train buffer + eval frames), ``state.json``."""
        from robolearn.nerf.checkpoint import save_bridge

        return save_bridge(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, work_dir=None, **overrides) -> "NerfBridge":
        """Rebuild a bridge from :meth:`save` output and continue where it stopped."""
        from robolearn.nerf.checkpoint import load_bridge

        return load_bridge(cls, Path(path), work_dir, **overrides)

    def export_point_cloud(self, path: str | Path, num_points: int = 20000) -> int:
        """Point cloud of the scene (world frame, metres) written as a binary .ply; returns
        the number of points.  Uses nerfstudio's ``generate_point_cloud`` (rays from the
        training frames, points at the rendered depth, outlier removal) when open3d imports;
        else the same recipe in numpy (open3d needs the system's libusb, absent on minimal
        machines)."""
        from robolearn.nerf.export import write_ply

        self.pipeline.eval()
        try:
            pts, rgb = self._points_nerfstudio(num_points)
        except (ImportError, OSError) as e:
            log.warning("nerf: nerfstudio's point-cloud exporter unavailable (%s); using the "
                        "numpy fallback", e)
            pts, rgb = self._points_numpy(num_points)
        finally:
            self.pipeline.train()
        write_ply(path, self.to_world_points(pts), rgb)
        return len(pts)

    def _points_nerfstudio(self, num_points: int):
        from nerfstudio.exporter.exporter_utils import generate_point_cloud

        pcd = generate_point_cloud(self.pipeline, num_points=num_points, remove_outliers=True,
                                   std_ratio=2.0)
        return np.asarray(pcd.points), np.asarray(pcd.colors)

    @torch.no_grad()
    def _points_numpy(self, num_points: int, min_accumulation: float = 0.5):
        pts, cols, n = [], [], 0
        while n < num_points:
            bundle, _ = self.dm.next_train(0)
            out = self.model(bundle)
            keep = out["accumulation"][:, 0] > min_accumulation
            p = bundle.origins + bundle.directions * out["depth"]
            pts.append(p[keep].cpu().numpy())
            cols.append(out["rgb"][keep].clamp(0, 1).cpu().numpy())
            n += int(keep.sum())
            if len(pts) > 4 * num_points // max(self.dm.config.train_num_rays_per_batch, 1) + 8:
                break  # a scene that is mostly empty: stop rather than loop forever
        return np.concatenate(pts)[:num_points], np.concatenate(cols)[:num_points]

    def close(self) -> None:
        if self.trainer.viewer_state is not None:
            self.trainer.shutdown()
        if self._tmp is not None:
            self._tmp.cleanup()

    def summary(self) -> str:
        return (f"step {self.step}, {self.n_train_frames} train frames (capacity "
                f"{self.buffer.capacity}, {self.buffer.n_evicted} evicted), "
                f"{len(self.eval_frames)} eval, {self.n_rejected} rejected")


@torch.no_grad()
def render_camera(model, camera, scale: float = 1.0) -> dict:
    """Render a one-camera nerfstudio ``Cameras`` with ``model``; z-depth divided by ``scale``
    (nerf units -> metres).  nerfacto's ``depth`` is distance along the unit ray; z-depth
    divides it by the norm of the camera-space direction (z = -1)."""
    bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
    out = model.get_outputs_for_camera_ray_bundle(bundle)
    dnorm = bundle.metadata["directions_norm"][..., 0]
    zdepth = out["depth"][..., 0] / dnorm / scale
    return {"rgb": out["rgb"].clamp(0, 1).cpu().numpy(), "depth": zdepth.cpu().numpy(),
            "accumulation": out["accumulation"][..., 0].cpu().numpy()}
