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


def _load(ref: str):
    module, cls = ref.split(":")
    return getattr(importlib.import_module(module), cls)


def _check(name: str) -> None:
    if name not in POLICIES:
        raise KeyError(f"unknown policy {name!r}; valid policies: {', '.join(sorted(POLICIES))}")


def list_policies() -> list[str]:
    return sorted(POLICIES)


def get_config_class(name: str):
    """The config dataclass of policy ``name`` (cheap: dataclasses only)."""
    _check(name)
    return _load(POLICIES[name][0])


def get_policy_class(name: str):
    """The ``Policy`` subclass of ``name`` (imports torch and the policy's dependencies)."""
    _check(name)
    return _load(POLICIES[name][1])


def make_policy(name: str, config=None, stats=None, tiny: bool = False):
    """Build policy ``name`` from ``config`` (default: its default or tiny config)."""
    if config is None:
        cfg_cls = get_config_class(name)
        config = cfg_cls.tiny() if tiny else cfg_cls()
    if stats is not None:
        config.resolve_features(stats)
    return get_policy_class(name)(config, stats)
