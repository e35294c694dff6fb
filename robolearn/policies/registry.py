"""The policy registry: the one place a policy name maps to its config and model class.

Entries are ``"module:Class"`` strings so looking a name up imports only that policy
(and its heavy dependencies), never all of them.
"""

from __future__ import annotations

import importlib

#: policy name -> (config class, policy class)
POLICIES: dict[str, tuple[str, str]] = {
    "bc": ("robolearn.policies.bc.config:BCConfig", "robolearn.policies.bc.model:BCPolicy"),
    "diffusion": ("robolearn.policies.diffusion.config:DiffusionConfig",
                  "robolearn.policies.diffusion.model:DiffusionPolicy"),
    "flow_vla": ("robolearn.policies.flow_vla.config:FlowVLAConfig",
                 "robolearn.policies.flow_vla.model:FlowVLAPolicy"),
    "iql": ("robolearn.policies.iql.config:IQLConfig", "robolearn.policies.iql.model:IQLPolicy"),
}
#: models the trainer trains that are not deployable policies (not in list_policies)
PRETRAINERS: dict[str, tuple[str, str]] = {
    "pretrain": ("robolearn.policies.pretrain.config:PretrainConfig",
                 "robolearn.policies.pretrain.model:PretrainModel"),
}


def _load(ref: str):
    module, cls = ref.split(":")
    return getattr(importlib.import_module(module), cls)


def _entry(name: str) -> tuple[str, str]:
    if name in POLICIES:
        return POLICIES[name]
    if name in PRETRAINERS:
        return PRETRAINERS[name]
    raise KeyError(f"unknown policy {name!r}; valid policies: {', '.join(sorted(POLICIES))} "
                   f"(pretraining: {', '.join(sorted(PRETRAINERS))})")


def list_policies() -> list[str]:
    return sorted(POLICIES)


def get_config_class(name: str):
    """The config dataclass of policy ``name`` (cheap: dataclasses only)."""
    return _load(_entry(name)[0])


def get_policy_class(name: str):
    """The ``Policy`` subclass of ``name`` (imports torch and the policy's dependencies)."""
    return _load(_entry(name)[1])


def make_policy(name: str, config=None, stats=None, tiny: bool = False):
    """Build policy ``name`` from ``config`` (default: its default or tiny config)."""
    if config is None:
        cfg_cls = get_config_class(name)
        config = cfg_cls.tiny() if tiny else cfg_cls()
    if stats is not None:
        config.resolve_features(stats)
    return get_policy_class(name)(config, stats)
