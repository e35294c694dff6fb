"""Build a tiny training run on synthetic windows."""

import torch

from robolearn.policies import get_config_class, get_policy_class
from robolearn.policies.testing import dataset_for
from robolearn.training.config import TRAIN_CONFIGS


def tiny_run(name, out_dir, steps=4, batch_size=8, seed=0, **overrides):
    """(cfg, policy, train_data, val_data) with the tiny policy and a small synthetic dataset."""
    cfg = TRAIN_CONFIGS[name](out_dir=str(out_dir), steps=steps, seed=seed, log_every=1,
                              save_every=2, progress=False, device="cpu")
    cfg.policy = get_config_class(name).tiny()
    cfg.data.batch_size = batch_size
    cfg.optim.lr, cfg.optim.warmup_steps = 3e-3, 1
    for k, v in overrides.items():
        setattr(cfg, k, v)
    train = dataset_for(cfg.policy, n_episodes=4, seed=0)
    val = dataset_for(cfg.policy, n_episodes=2, seed=1)
    cfg.policy.resolve_features(train.stats(), train.image_keys)
    torch.manual_seed(seed)
    policy = get_policy_class(name)(cfg.policy, train.stats())
    return cfg, policy, train, val
