"""NeRF bridge config schemas (dataclasses only: cheap to import, registered with hydra)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NerfModelConfig:
    """The nerfstudio nerfacto model, sized for CPU (pure-torch hash grid)."""

    implementation: str = "torch"
    """Hash-grid backend: torch (CPU and CUDA) or tcnn (CUDA with tiny-cuda-nn installed)."""
    num_levels: int = 8
    """Hash-grid levels of the main field."""
    log2_hashmap_size: int = 15
    """log2 of entries per hash-grid level."""
    max_res: int = 256
    """Finest hash-grid resolution (nerf units span about [-1, 1])."""
    hidden_dim: int = 32
    """Width of the density MLP."""
    hidden_dim_color: int = 32
    """Width of the colour MLP."""
    num_proposal_samples: list[int] = field(default_factory=lambda: [48])
    """Samples per ray of each proposal-network round; its length is the number of rounds
    (nerfacto default: 256, 96; one round of 48 is ~2x cheaper on CPU)."""
    num_nerf_samples: int = 24
    """Samples per ray of the final field (nerfacto default: 48)."""
    appearance_embed_dim: int = 0
    """Per-image appearance embedding size (0 = off: sim and single robot cameras don't need it)."""
    near_plane: float = 0.02
    """Near plane, nerf units."""
    far_plane: float = 10.0
    """Far plane, nerf units."""
    background_color: str = "last_sample"
    """nerfacto background: last_sample, black, white or random."""
    lr: float = 1e-2
    """Adam learning rate of the fields (nerfstudio's nerfacto uses 1e-2)."""
    lr_final: float = 1e-4
    """Learning rate at the end of the exponential decay."""
    lr_decay_steps: int = 20000
    """Steps over which the learning rate decays to lr_final."""


@dataclass
class NerfBridgeConfig:
    """The streaming bridge: image size, scene normalisation, buffer, sampling, eval."""

    image_width: int = 64
    """Width every streamed frame must have (others are rejected)."""
    image_height: int = 64
    """Height every streamed frame must have."""
    scene_center: list[float] = field(default_factory=lambda: [0.45, 0.0, 0.1])
    """World point (m) mapped to the nerf origin."""
    scene_scale: float = 1.0
    """Nerf units per metre: cameras and the region of interest should land inside about
    [-1, 1] (nerfstudio's convention; beyond it nerfacto's scene contraction coarsens)."""
    memory_budget_mb: float = 64.0
    """Byte budget of the training frame buffer (RGB + depth); sets its slot count."""
    max_frames: int = 512
    """Hard cap on kept training frames, also the model's camera count (0 = budget only)."""
    protect_recent: int = 4
    """When full, the newest N frames are never evicted."""
    rot_weight: float = 0.3
    """Metres per radian when comparing poses for redundancy."""
    sampling: str = "recency"
    """Which frames rays come from: recency (DISORF-style) or uniform."""
    recent_fraction: float = 0.5
    """Share of rays drawn from the recency distribution (rest uniform)."""
    recency_tau: float = 8.0
    """Decay (in frames) of the recency distribution."""
    rays_per_batch: int = 512
    """Rays per training step."""
    eval_every_k: int = 8
    """Every k-th accepted frame goes to the held-out eval split instead of training."""
    max_eval_frames: int = 16
    """Eval frames kept (reservoir sample over the stream)."""
    rot_tol: float = 1e-3
    """Tolerance of the orthonormality check of streamed rotations."""
    device: str = "auto"
    """cpu, cuda or auto."""
    seed: int = 0
    """Seed of the model init and the ray sampler."""
    model: NerfModelConfig = field(default_factory=NerfModelConfig)
    """The nerfacto model."""

    @classmethod
    def from_dict(cls, d: dict) -> "NerfBridgeConfig":
        """Inverse of ``dataclasses.asdict`` (checkpoints' state.json, the worker's init)."""
        d = dict(d)
        return cls(model=NerfModelConfig(**d.pop("model", {})), **d)


@dataclass
class NerfSourceConfig:
    """Where frames come from for ``robolearn-nerf train``."""

    kind: str = "synthetic"
    """synthetic (analytic scene), sim (MuJoCo tabletop) or store (a trajectory store)."""
    n_frames: int = 120
    """Frames to stream (sim/synthetic)."""
    cameras: list[str] = field(default_factory=lambda: ["wrist"])
    """Sim cameras: wrist (the arm sweeps it) and/or the scene's fixed cameras (front, ...)."""
    robot: str = "panda"
    """Sim robot."""
    store: str = ""
    """Trajectory store path/URL (kind=store); needs observation.nerf.* keys or poses."""
    camera_key: str = "front"
    """Image key suffix in the store (observation.images.<camera_key>)."""
    fovy: float = 50.0
    """Vertical field of view of synthetic frames (degrees)."""
    sweep: float = 6.2832
    """Synthetic orbit angle swept over the stream (radians)."""


@dataclass
class NerfRunConfig:
    """``robolearn-nerf train``: stream frames into the bridge while training."""

    out_dir: str = "runs/nerf"
    """Run folder: config, metrics.csv, psnr.png, eval_grid.png, checkpoint/."""
    steps: int = 300
    """Training steps."""
    steps_per_frame: int = 2
    """Training steps between two streamed frames (the stream's speed relative to training)."""
    eval_every: int = 50
    """Evaluate on the held-out split every N steps."""
    save_every: int = 0
    """Checkpoint every N steps (0 = only at the end)."""
    resume: bool = False
    """Resume from out_dir/checkpoint if present."""
    export_points: int = 20000
    """Points of the exported point cloud (0 = no export)."""
    bridge: NerfBridgeConfig = field(default_factory=NerfBridgeConfig)
    """The bridge."""
    source: NerfSourceConfig = field(default_factory=NerfSourceConfig)
    """The frame source."""
