"""Windows over episodes: which global steps a training sample reads, and which are padding.

A window is anchored at a step ``t`` of an episode.  It reads the observations at
``t-n_obs+1 .. t`` and the actions at ``t .. t+horizon-1`` (the action chunk starts at
the current step, as in LeRobot/openpi).  Steps that fall outside the episode are
filled with the nearest edge step (the episode's first or last step) and flagged in a
padding mask, so policies can ignore them in the loss.  Every step of every selected
episode is an anchor, so episodes of unequal length are sampled in proportion to their
length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class WindowIndices:
    """Global step indices and padding masks for a batch of anchors.

    ``obs``: int64 (B, n_obs), ``obs_pad``: bool (B, n_obs), ``act``: int64 (B, horizon),
    ``act_pad``: bool (B, horizon), ``episode``: int64 (B,), ``anchor``: int64 (B,).
    """

    obs: np.ndarray
    obs_pad: np.ndarray
    act: np.ndarray
    act_pad: np.ndarray
    episode: np.ndarray
    anchor: np.ndarray


class WindowIndex:
    """All anchors of a set of episodes, given the store's ``episode_ends``."""

    def __init__(self, episode_ends: np.ndarray, n_obs: int, horizon: int,
                 episodes: np.ndarray | None = None):
        if n_obs < 1 or horizon < 1:
            raise ValueError(f"n_obs and horizon must be >= 1 (got {n_obs}, {horizon})")
        ends = np.asarray(episode_ends, dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        eps = np.arange(len(ends)) if episodes is None else np.asarray(episodes, dtype=np.int64)
        if len(eps) and (eps.min() < 0 or eps.max() >= len(ends)):
            raise IndexError(f"episode ids out of range for a store of {len(ends)} episodes")
        self.n_obs, self.horizon = int(n_obs), int(horizon)
        self.episodes = eps
        self.ep_start, self.ep_end = starts, ends
        lengths = ends[eps] - starts[eps]
        # anchors: every step of every selected episode, in episode order
        self.anchor_episode = np.repeat(eps, lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        self.anchors = starts[self.anchor_episode] + offsets

    def __len__(self) -> int:
        return int(len(self.anchors))

    def windows(self, idx: np.ndarray | int) -> WindowIndices:
        """Window indices for sample ids ``idx`` (positions in ``self.anchors``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        t = self.anchors[idx]
        ep = self.anchor_episode[idx]
        lo, hi = self.ep_start[ep][:, None], self.ep_end[ep][:, None] - 1
        obs = t[:, None] + np.arange(-self.n_obs + 1, 1)[None, :]
        act = t[:, None] + np.arange(self.horizon)[None, :]
        obs_pad, act_pad = (obs < lo) | (obs > hi), (act < lo) | (act > hi)
        return WindowIndices(np.clip(obs, lo, hi), obs_pad, np.clip(act, lo, hi), act_pad, ep, t)

    def future(self, idx: np.ndarray | int, offset: int) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
        """The observation window ending ``offset`` steps after each anchor (``s_{t+k}``).

        Returns ``obs`` int64 (B, n_obs) clipped into the episode, ``obs_pad`` (B, n_obs) and
        ``beyond`` (B,): True where ``t + offset`` is past the episode's last step, so the
        window was clipped to the final observation (the episode ended inside the chunk).
        """
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        t = self.anchors[idx] + offset
        ep = self.anchor_episode[idx]
        lo, hi = self.ep_start[ep], self.ep_end[ep] - 1
        beyond = t > hi
        t = np.minimum(t, hi)
        obs = t[:, None] + np.arange(-self.n_obs + 1, 1)[None, :]
        pad = obs < lo[:, None]
        return np.clip(obs, lo[:, None], hi[:, None]), pad, beyond


def split_episodes(n_episodes: int, val_ratio: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic episode-level train/val split (never splits inside an episode).

    At least one validation episode when ``val_ratio > 0`` and there are >= 2 episodes.
    """
    if not 0.0 <= val_ratio < 1.0:
        raise ValueError(f"val_ratio must be in [0, 1), got {val_ratio}")
    perm = np.random.default_rng(seed).permutation(n_episodes)
    n_val = int(round(n_episodes * val_ratio))
    if val_ratio > 0 and n_val == 0 and n_episodes >= 2:
        n_val = 1
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def block_shuffle_order(anchors: np.ndarray, chunk_steps: int, blocks_in_flight: int,
                        rng: np.random.Generator) -> np.ndarray:
    """A sample order that stays inside a few storage chunks at a time.

    Random permutations touch a new image chunk on almost every sample; when the store
    does not fit in RAM that means one decompression per window.  Instead, shuffle the
    chunks, take ``blocks_in_flight`` of them at a time (sized to fit the chunk cache) and
    shuffle the samples within that group: every chunk is decompressed about once per
    epoch and batches still mix several episodes.
    """
    block = anchors // chunk_steps
    order_blocks = rng.permutation(np.unique(block))
    pos = np.empty(block.max() + 1 if len(block) else 0, dtype=np.int64)
    pos[order_blocks] = np.arange(len(order_blocks))
    group = pos[block] // max(1, blocks_in_flight)
    # sort by group, random within a group
    return np.lexsort((rng.random(len(anchors)), group))
