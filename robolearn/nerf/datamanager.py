"""A nerfstudio data manager fed by a stream of posed frames (NerfBridge's pattern, fixed).

Imports nerfstudio/torch: import this module only where a bridge is built.

What nerfstudio's stock managers assume and a robot stream breaks, and what we do:

* the camera count is fixed when the model is built -> the manager has ``capacity`` slots
  (from the memory budget); empty slots get zero sampling weight, a full buffer evicts by
  an explicit policy (:mod:`robolearn.nerf.buffer`), never by silently dropping frames;
* nerfacto's default ``ParallelDataManager`` runs worker processes that never see frames
  added later -> this manager samples rays in the training process, from tensors that
  :meth:`write_slot` updates in place;
* ``cameras.to(device)`` copies -> the ``Cameras`` the ray generator reads are built on the
  training device once, and streamed poses are written into *that* tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple, Type

import numpy as np
import torch

from robolearn.nerf.tv_hook import ensure_torchvision

ensure_torchvision()

from nerfstudio.cameras.cameras import Cameras, CameraType  # noqa: E402
from nerfstudio.cameras.rays import RayBundle  # noqa: E402
from nerfstudio.data.datamanagers.base_datamanager import (  # noqa: E402
    DataManager,
    VanillaDataManager,
    VanillaDataManagerConfig,
)
from nerfstudio.data.scene_box import SceneBox  # noqa: E402
from nerfstudio.model_components.ray_generators import RayGenerator  # noqa: E402


@dataclass
class StreamingDataManagerConfig(VanillaDataManagerConfig):
    """Config of :class:`StreamingDataManager` (no dataparser: frames arrive at run time)."""

    _target: Type = field(default_factory=lambda: StreamingDataManager)
    capacity: int = 64
    """Camera slots (fixed for the model's lifetime)."""
    width: int = 64
    """Image width of every frame."""
    height: int = 64
    """Image height of every frame."""
    train_num_rays_per_batch: int = 512
    """Rays per training batch."""
    seed: int = 0
    """Seed of the ray sampler."""


class _StreamDataset:
    """The bits of ``InputDataset`` that ``VanillaPipeline`` and the model read."""

    def __init__(self, cameras: Cameras, scene_box: SceneBox):
        self.cameras, self.scene_box, self.metadata = cameras, scene_box, {}
        self.exclude_batch_keys_from_device: list = []

    def __len__(self) -> int:
        return len(self.cameras)


class StreamingDataManager(VanillaDataManager):
    """Samples rays from the frames written so far; see the module docstring."""

    config: StreamingDataManagerConfig

    def __init__(self, config: StreamingDataManagerConfig, device="cpu", test_mode="val",
                 world_size: int = 1, local_rank: int = 0, **kwargs):
        self.config, self.device = config, device
        self.world_size, self.local_rank, self.test_mode = world_size, local_rank, test_mode
        self.includes_time = False
        self.eval_dataset = None
        self.train_dataset = None  # set below; DataManager.__init__ must not set up loaders
        DataManager.__init__(self)  # nn.Module init: before any submodule is assigned
        n, h, w = config.capacity, config.height, config.width
        eye = torch.eye(4)[:3].expand(n, 3, 4).clone()
        ones = torch.ones(n, 1)
        self.cameras = Cameras(camera_to_worlds=eye, fx=ones * w, fy=ones * w, cx=ones * w / 2,
                               cy=ones * h / 2, width=torch.full((n, 1), w, dtype=torch.long),
                               height=torch.full((n, 1), h, dtype=torch.long),
                               camera_type=CameraType.PERSPECTIVE).to(device)
        self.train_dataset = _StreamDataset(self.cameras, SceneBox(torch.tensor([[-1.0] * 3,
                                                                                  [1.0] * 3])))
        self.images = torch.zeros(n, h, w, 3, dtype=torch.uint8, device=device)
        self.weights = torch.zeros(n, device=device)
        self.ray_generator = RayGenerator(self.cameras)
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.sample_seconds = 0.0

    # nerfstudio calls these from DataManager.__init__; the stream needs no loaders
    def setup_train(self):
        pass

    def setup_eval(self):
        pass

    def share_images(self, rgb: np.ndarray) -> None:
        """Use the buffer's (N, H, W, 3) uint8 array as image storage (no copy on CPU)."""
        t = torch.from_numpy(rgb)
        self.images = t if str(self.device) == "cpu" else t.to(self.device)

    def write_slot(self, slot: int, rgb: np.ndarray, c2w_nerf: np.ndarray,
                   intr: np.ndarray) -> None:
        """Put one frame (OpenGL c2w in nerf units, intrinsics fx fy cx cy) into ``slot``."""
        cams = self.cameras
        with torch.no_grad():
            cams.camera_to_worlds[slot] = torch.as_tensor(c2w_nerf[:3], dtype=torch.float32)
            for name, v in zip(("fx", "fy", "cx", "cy"), intr):
                getattr(cams, name)[slot] = float(v)
            if str(self.device) != "cpu":  # on CPU ``images`` *is* the buffer's array
                self.images[slot] = torch.from_numpy(rgb).to(self.device)

    def set_weights(self, weights: np.ndarray) -> None:
        """Per-slot sampling probabilities (zeros for empty slots)."""
        self.weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        """A batch of rays: frames by ``weights``, pixels uniform within each frame."""
        import time

        t0 = time.perf_counter()
        self.train_count += 1
        r, g = self.config.train_num_rays_per_batch, self.generator
        if float(self.weights.sum()) <= 0:
            raise RuntimeError("no training frames yet; stream frames before stepping")
        cam = torch.multinomial(self.weights, r, replacement=True, generator=g)
        y = torch.randint(self.config.height, (r,), device=self.device, generator=g)
        x = torch.randint(self.config.width, (r,), device=self.device, generator=g)
        indices = torch.stack([cam, y, x], -1)
        rgb = self.images[cam, y, x].float() / 255.0
        ray_bundle = self.ray_generator(indices)
        self.sample_seconds += time.perf_counter() - t0
        return ray_bundle, {"image": rgb, "indices": indices}

    def next_eval(self, step: int):
        return self.next_train(step)

    def next_eval_image(self, step: int):
        raise NotImplementedError("the bridge evaluates its held-out frames itself")

    def get_train_rays_per_batch(self) -> int:
        return self.config.train_num_rays_per_batch

    def get_eval_rays_per_batch(self) -> int:
        return self.config.train_num_rays_per_batch

    def get_datapath(self):
        return None

    def get_param_groups(self):
        return {}
