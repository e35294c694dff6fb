"""Policies: one folder per policy (``<name>/config.py`` + ``<name>/model.py``) sharing the
contract in :mod:`robolearn.policies.base`; look them up with :mod:`.registry`.

Importing this package stays cheap: torch, diffusers and transformers load only when a
policy class is requested.
"""

from robolearn.policies.registry import (get_config_class, get_policy_class, list_policies,
                                         make_policy)

__all__ = ["get_config_class", "get_policy_class", "list_policies", "make_policy", "load_policy"]


def load_policy(path, device="cpu"):
    """Load a checkpoint folder written by ``save_pretrained`` / the trainer."""
    from robolearn.policies.base import load_policy as _load

    return _load(path, device)
