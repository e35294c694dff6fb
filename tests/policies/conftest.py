"""Fixtures: tiny configs of every registered policy and synthetic windows (unequal episodes)."""

import pytest
import torch

# one thread: on a shared 2-core machine two spinning OpenMP threads run ~7x slower
torch.set_num_threads(1)

from robolearn.policies import get_config_class, list_policies
from robolearn.policies.testing import dataset_for


@pytest.fixture(params=list_policies())
def policy_name(request):
    return request.param


def build(name, seed=0, **overrides):
    """(policy, dataset) for the tiny config of ``name``."""
    cfg = get_config_class(name).tiny()
    for k, v in overrides.items():
        setattr(cfg, k, v)
    ds = dataset_for(cfg, n_episodes=4, seed=seed)
    cfg.resolve_features(ds.stats(), ds.image_keys)
    torch.manual_seed(seed)
    from robolearn.policies import get_policy_class

    return get_policy_class(name)(cfg, ds.stats()), ds
