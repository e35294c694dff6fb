"""nerfstudio pieces the bridge (and its offline baseline) are built from.

``BridgeNerfactoModel`` is nerfstudio's nerfacto unchanged except that it does not build
the LPIPS metric: torchmetrics' LPIPS downloads AlexNet weights at construction, which fails
offline and is not needed to train (PSNR/SSIM are still reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Type

import torch

from robolearn.nerf.tv_hook import ensure_torchvision

ensure_torchvision()

import nerfstudio.models.nerfacto as _nerfacto  # noqa: E402
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig  # noqa: E402
from nerfstudio.configs.base_config import LoggingConfig, LocalWriterConfig, MachineConfig  # noqa: E402
from nerfstudio.engine.optimizers import AdamOptimizerConfig  # noqa: E402
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig  # noqa: E402
from nerfstudio.engine.trainer import TrainerConfig  # noqa: E402
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig  # noqa: E402

from robolearn.nerf.config import NerfModelConfig  # noqa: E402


class _NoLPIPS(torch.nn.Module):
    """Stands in for LPIPS: returns NaN (so metrics dicts keep their keys)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *args, **kwargs):
        return torch.tensor(float("nan"))


class BridgeNerfactoModel(_nerfacto.NerfactoModel):
    """nerfacto without the LPIPS download (see the module docstring)."""

    def populate_modules(self):
        import torchmetrics.image.lpip as lpip  # nerfacto imports the class from here

        original = lpip.LearnedPerceptualImagePatchSimilarity
        lpip.LearnedPerceptualImagePatchSimilarity = _NoLPIPS
        try:
            super().populate_modules()
        finally:
            lpip.LearnedPerceptualImagePatchSimilarity = original


@dataclass
class BridgeNerfactoModelConfig(_nerfacto.NerfactoModelConfig):
    """nerfacto's config, building :class:`BridgeNerfactoModel`."""

    _target: Type = field(default_factory=lambda: BridgeNerfactoModel)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def nerfacto_config(m: NerfModelConfig, rays_per_batch: int) -> BridgeNerfactoModelConfig:
    """Our compact CPU-sized nerfacto (all other fields: nerfstudio's defaults)."""
    prop = [{"hidden_dim": 16, "log2_hashmap_size": min(m.log2_hashmap_size, 17),
             "num_levels": 5, "max_res": 64 * 2**i, "use_linear": False}
            for i in range(len(m.num_proposal_samples))]
    return BridgeNerfactoModelConfig(
        implementation=m.implementation, num_levels=m.num_levels,
        log2_hashmap_size=m.log2_hashmap_size, max_res=m.max_res, hidden_dim=m.hidden_dim,
        hidden_dim_color=m.hidden_dim_color,
        num_proposal_samples_per_ray=tuple(m.num_proposal_samples),
        num_nerf_samples_per_ray=m.num_nerf_samples, proposal_net_args_list=prop,
        num_proposal_iterations=len(m.num_proposal_samples),
        use_appearance_embedding=m.appearance_embed_dim > 0,
        appearance_embed_dim=max(m.appearance_embed_dim, 1),
        near_plane=m.near_plane, far_plane=m.far_plane, background_color=m.background_color,
        eval_num_rays_per_chunk=4096, camera_optimizer=CameraOptimizerConfig(mode="off"))


def optimizer_configs(m: NerfModelConfig) -> dict:
    def group():
        return {"optimizer": AdamOptimizerConfig(lr=m.lr, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=m.lr_final,
                                                             max_steps=m.lr_decay_steps)}
    return {"proposal_networks": group(), "fields": group()}


def trainer_config(datamanager, m: NerfModelConfig, rays_per_batch: int, device: str,
                   out_dir: Path, viewer: bool = False) -> TrainerConfig:
    """A nerfstudio ``TrainerConfig`` for nerfacto over ``datamanager`` (streaming or not)."""
    return TrainerConfig(
        method_name="robolearn-nerfacto", experiment_name="nerf", timestamp="ns",
        output_dir=Path(out_dir), vis="viewer" if viewer else "tensorboard",
        machine=MachineConfig(device_type=device.split(":")[0], num_devices=1),
        logging=LoggingConfig(local_writer=LocalWriterConfig(enable=False)),
        mixed_precision=False, max_num_iterations=10**9,
        pipeline=VanillaPipelineConfig(datamanager=datamanager,
                                       model=nerfacto_config(m, rays_per_batch)),
        optimizers=optimizer_configs(m))
