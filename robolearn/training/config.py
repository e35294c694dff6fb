"""Training config schemas (dataclasses only: cheap to import, registered with hydra).

One schema per policy (``train_<policy>_schema``) so that the ``policy`` block of a preset
is checked against that policy's config: unknown keys and wrong types fail at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robolearn.config.schemas import SamplerConfig
from robolearn.eval.config import EvalProtocol
from robolearn.policies.bc.config import BCConfig
from robolearn.policies.diffusion.config import DiffusionConfig
from robolearn.policies.flow_vla.config import FlowVLAConfig
from robolearn.policies.iql.config import IQLConfig
from robolearn.policies.pretrain.config import PretrainConfig


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay, and gradient clipping."""

    lr: float = 1e-4
    """Peak learning rate (reached at the end of warmup)."""
    weight_decay: float = 1e-4
    """AdamW weight decay (not applied to biases, norms and embeddings' 1-D params)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """AdamW (beta1, beta2)."""
    eps: float = 1e-8
    """AdamW epsilon."""
    warmup_steps: int = 100
    """Steps of linear warmup from 0 to lr."""
    min_lr_ratio: float = 0.1
    """The cosine decays to lr * min_lr_ratio at the last step."""
    grad_clip_norm: float = 1.0
    """Clip the global gradient norm to this value (0 = no clipping)."""


@dataclass
class TrainConfig:
    """One training run of any policy: data, optimiser, EMA, precision, checkpoints, logging."""

    out_dir: str = "runs/train"
    """Run folder: config, metrics.csv, loss.png, checkpoints/ land here."""
    steps: int = 10000
    """Total optimiser steps (the cosine schedule spans them)."""
    seed: int = 0
    """Seed of model init, data order and noise (each DDP rank adds its rank)."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto (CUDA when available)."""
    mixed_precision: str = "auto"
    """no, bf16, fp16 or auto (bf16 autocast on CUDA GPUs that support it, else no)."""
    use_ema: bool = True
    """Keep an exponential moving average of the weights; checkpoints export it for inference."""
    ema_decay: float = 0.999
    """Maximum EMA decay (the decay warms up as (1 + step) / (10 + step))."""
    log_every: int = 10
    """Write a metrics row (and refresh the progress bar) every N steps."""
    save_every: int = 1000
    """Save a resumable checkpoint every N steps (and always at the end)."""
    keep_last: int = 3
    """Checkpoints to keep (older ones are deleted)."""
    val_every: int = 0
    """Compute the validation loss every N steps (0 = never)."""
    val_batches: int = 4
    """Validation batches per evaluation."""
    eval_every: int = 0
    """Roll the EMA weights out in the sim every N steps with the `eval` protocol (0 = never)."""
    max_minutes: float = 0.0
    """Wall-clock budget: save and stop after this many minutes of training (0 = no limit).
    The schedule still spans `steps`; resume=true continues."""
    resume: bool = False
    """Continue from the latest checkpoint in out_dir (exact: weights, optimiser, EMA, RNG, step)."""
    progress: bool = True
    """Show a tqdm progress bar (rank 0 only)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and learning-rate schedule."""
    data: SamplerConfig = field(default_factory=SamplerConfig)
    """Trajectory store and window sampling."""
    eval: EvalProtocol = field(default_factory=lambda: EvalProtocol(trials=10, videos=1))
    """Sim evaluation protocol used every eval_every steps (reports under <out_dir>/eval/)."""


@dataclass
class TrainBCConfig(TrainConfig):
    """Train the behaviour-cloning baseline."""

    policy: BCConfig = field(default_factory=BCConfig)
    """Policy config (see robolearn/policies/bc/config.py)."""


@dataclass
class TrainDiffusionConfig(TrainConfig):
    """Train Diffusion Policy."""

    policy: DiffusionConfig = field(default_factory=DiffusionConfig)
    """Policy config (see robolearn/policies/diffusion/config.py)."""


@dataclass
class TrainFlowVLAConfig(TrainConfig):
    """Train the flow-matching VLA."""

    policy: FlowVLAConfig = field(default_factory=FlowVLAConfig)
    """Policy config (see robolearn/policies/flow_vla/config.py)."""


@dataclass
class TrainIQLConfig(TrainConfig):
    """Train IQL (offline RL) on a store's rewards; the sampler adds the window H steps ahead."""

    policy: IQLConfig = field(default_factory=IQLConfig)
    """Policy config (see robolearn/policies/iql/config.py)."""


@dataclass
class TrainPretrainConfig(TrainConfig):
    """Pretrain an observation encoder (inverse dynamics, forward dynamics or BC)."""

    policy: PretrainConfig = field(default_factory=PretrainConfig)
    """Objective and encoder (see robolearn/policies/pretrain/config.py)."""


#: policy name -> training schema class (the schemas are registered in robolearn.config.registry)
TRAIN_CONFIGS = {"bc": TrainBCConfig, "diffusion": TrainDiffusionConfig,
                 "flow_vla": TrainFlowVLAConfig, "iql": TrainIQLConfig,
                 "pretrain": TrainPretrainConfig}
