"""The one place where config schemas are registered with hydra's ConfigStore.

A schema module must stay cheap to import (dataclasses only: no torch, mujoco, rclpy).
"""

from __future__ import annotations

import importlib

#: schema name (used in a preset's ``defaults``) -> "module:Class"
SCHEMAS: dict[str, str] = {
    "sampler_schema": "robolearn.config.schemas:SamplerConfig",
    "demo_schema": "robolearn.config.schemas:DemoConfig",
    "env_schema": "robolearn.envs.config:EnvConfig",
    "collect_schema": "robolearn.envs.config:CollectConfig",
    "train_bc_schema": "robolearn.training.config:TrainBCConfig",
    "train_diffusion_schema": "robolearn.training.config:TrainDiffusionConfig",
    "train_flow_vla_schema": "robolearn.training.config:TrainFlowVLAConfig",
    "train_iql_schema": "robolearn.training.config:TrainIQLConfig",
    "train_pretrain_schema": "robolearn.training.config:TrainPretrainConfig",
    "eval_schema": "robolearn.eval.config:EvalConfig",
    "nerf_schema": "robolearn.nerf.config:NerfRunConfig",
    "planner_schema": "robolearn.planner.config:PlannerConfig",
    "serve_schema": "robolearn.serving.config:ServeConfig",
}

_registered = False


def load_schema(name: str) -> type:
    if name not in SCHEMAS:
        raise KeyError(f"unknown config schema {name!r}; known: {sorted(SCHEMAS)}")
    module, cls = SCHEMAS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def register_schemas() -> None:
    """Register every schema once (idempotent)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name in SCHEMAS:
        cs.store(name=name, node=load_schema(name))
    _registered = True
