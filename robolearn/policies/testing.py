"""Test doubles: synthetic episodes, stats and batches with the dataset's exact contract.

Episodes have unequal lengths and go through the real :class:`WindowIndex`, so the
padding masks of a synthetic batch are the ones a store would give.  Actions are a
smooth function of the state (plus a camera-dependent offset), so a policy that learns
anything drives its loss down within a few steps.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from robolearn import keys as K
from robolearn.data.sampler import WindowIndex

INSTRUCTIONS = ("pick up the red cube", "place it in the bowl", "open the drawer")


class SyntheticWindowDataset:
    """Map-style dataset of windows over synthetic episodes (batches via ``__getitems__``)."""

    def __init__(self, n_episodes: int = 4, lengths: Sequence[int] | None = None,
                 state_dim: int = 3, action_dim: int = 2, cameras: Sequence[str] = ("front",),
                 image_size: int = 16, n_obs: int = 2, horizon: int = 4, seed: int = 0,
                 future_offset: int = 0):
        rng = np.random.default_rng(seed)
        lengths = list(lengths) if lengths is not None else [5 + 3 * i for i in range(n_episodes)]
        n = int(sum(lengths))
        self.episode_ends = np.cumsum(lengths)
        t = np.concatenate([np.linspace(0, 1, L) for L in lengths])
        ep = np.repeat(np.arange(len(lengths)), lengths)
        phase = rng.uniform(0, 2 * np.pi, len(lengths))[ep]
        self.state = np.stack([np.sin(2 * np.pi * t * (k + 1) + phase) for k in range(state_dim)],
                              -1).astype(np.float32)
        w = rng.normal(size=(state_dim, action_dim)).astype(np.float32)
        self.action = (np.tanh(self.state @ w) * 2.0 + 0.5).astype(np.float32)
        self.image_keys = [K.image_key(c) for c in cameras]
        self.images = {}
        for i, k in enumerate(self.image_keys):
            base = rng.integers(0, 256, size=(1, 3, image_size, image_size))
            level = ((self.state[:, :1] + 1) * 100).astype(np.int64)[:, :, None, None]
            self.images[k] = ((base + level + 40 * i) % 256).astype(np.uint8)
        self.language = np.array([INSTRUCTIONS[e % len(INSTRUCTIONS)] for e in ep], dtype=object)
        self.skill = np.array([("pick", "place", "open")[e % 3] for e in ep], dtype=object)
        self.index = WindowIndex(self.episode_ends, n_obs, horizon)
        self.n_steps = n
        self.future_offset = future_offset
        # sparse success reward on the last step of every other episode; done at every end
        last = self.episode_ends - 1
        self.done = np.zeros(n, bool)
        self.done[last] = True
        self.reward = np.zeros(n, np.float32)
        self.reward[last[::2]] = 1.0

    def stats(self) -> dict[str, dict[str, list[float]]]:
        def lowdim(x):
            q01, q99 = np.quantile(x, [0.01, 0.99], axis=0)
            return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(),
                    "max": x.max(0).tolist(), "q01": q01.tolist(), "q99": q99.tolist()}

        out = {K.OBS_STATE: lowdim(self.state), K.ACTION: lowdim(self.action)}
        for k, im in self.images.items():
            px = im.transpose(0, 2, 3, 1).reshape(-1, 3) / 255.0
            out[k] = {"mean": px.mean(0).tolist(), "std": px.std(0).tolist(),
                      "min": px.min(0).tolist(), "max": px.max(0).tolist()}
        return out

    def __len__(self) -> int:
        return len(self.index)

    def __getitems__(self, ids: Sequence[int]) -> dict[str, Any]:
        w = self.index.windows(np.asarray(ids))
        out: dict[str, Any] = {k: torch.from_numpy(im[w.obs]) for k, im in self.images.items()}
        out[K.OBS_STATE] = torch.from_numpy(self.state[w.obs])
        out[K.pad_key(K.OBS_STATE)] = torch.from_numpy(w.obs_pad)
        out[K.ACTION] = torch.from_numpy(self.action[w.act])
        out[K.pad_key(K.ACTION)] = torch.from_numpy(w.act_pad)
        out[K.REWARD] = torch.from_numpy(self.reward[w.act])
        out[K.DONE] = torch.from_numpy(self.done[w.act])
        if self.future_offset:
            f, f_pad, beyond = self.index.future(np.asarray(ids), self.future_offset)
            for k, im in self.images.items():
                out[K.next_key(k)] = torch.from_numpy(im[f])
            out[K.next_key(K.OBS_STATE)] = torch.from_numpy(self.state[f])
            out[K.pad_key(K.next_key(K.OBS_STATE))] = torch.from_numpy(f_pad)
            out[K.NEXT_DONE] = torch.from_numpy(beyond)
            out[K.NEXT_STEPS] = torch.from_numpy(
                self.index.future_steps(np.asarray(ids), self.future_offset))
        out[K.LANGUAGE] = [str(s) for s in self.language[w.anchor]]
        out[K.SKILL] = [str(s) for s in self.skill[w.anchor]]
        out["episode_index"] = torch.from_numpy(w.episode)
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        b = self.__getitems__([int(i)])
        return {k: v[0] for k, v in b.items()}

    def batch(self, batch_size: int = 8, seed: int = 0) -> dict[str, Any]:
        ids = np.random.default_rng(seed).choice(len(self), size=batch_size, replace=False)
        return self.__getitems__(ids)


def collate(batch):
    """DataLoader collate for datasets whose ``__getitems__`` already returns a batch."""
    if isinstance(batch, dict):
        return batch
    from torch.utils.data import default_collate

    return default_collate(batch)


def dataset_for(config, n_episodes: int = 4, seed: int = 0, **kw) -> SyntheticWindowDataset:
    """A synthetic dataset shaped for a policy config (n_obs, horizon, image size, cameras)."""
    cams = [K.camera_name(k) for k in config.image_keys] if config.image_keys else ["front"]
    return SyntheticWindowDataset(n_episodes=n_episodes, n_obs=config.n_obs,
                                  horizon=config.horizon, image_size=config.image_size,
                                  cameras=cams, seed=seed,
                                  future_offset=getattr(config, "future_offset", 0), **kw)


def synthetic_policy(name: str, config=None, *, state_dim: int = 15, action_dim: int = 8,
                     cameras: Sequence[str] = ("front",), lengths: Sequence[int] = (20,) * 4,
                     seed: int = 0):
    """``(policy, dataset)``: policy ``name`` (its default config unless ``config`` is
    given) with features and normalisation stats from a synthetic dataset of the given
    shape (the Panda's 15-D state and 8-D action by default) and seeded random weights.
    What tests, benchmarks and fixtures use when they need a real policy that learned
    nothing in particular."""
    from robolearn.policies.registry import get_config_class, get_policy_class

    cfg = config if config is not None else get_config_class(name)()
    ds = SyntheticWindowDataset(lengths=list(lengths), state_dim=state_dim,
                                action_dim=action_dim, cameras=list(cameras),
                                image_size=cfg.image_size, n_obs=cfg.n_obs,
                                horizon=cfg.horizon, seed=seed)
    cfg.resolve_features(ds.stats(), ds.image_keys)
    torch.manual_seed(seed)
    return get_policy_class(name)(cfg, ds.stats()), ds


def fit_batch(model: torch.nn.Module, batch: dict, steps: int, lr: float,
              cosine: bool = False) -> float:
    """Adam on one fixed batch for ``steps`` steps (``model.after_optimizer_step`` after
    each, as the trainer calls it); returns the last loss.  For tests whose answer is known
    exactly (a linear dynamics, an MDP's values)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    hook = getattr(model, "after_optimizer_step", None)
    loss = torch.zeros(())
    for _ in range(steps):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if hook is not None:
            hook()
    return float(loss.item())
