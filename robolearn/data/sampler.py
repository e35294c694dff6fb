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
    """All anchors of a set of episodes, given the store's ``episode_ends``.

    ``segments`` (optional, int (S, 3) rows of ``episode, start, stop`` in the episode's own
    step numbering, ``stop`` exclusive) anchors windows on those steps only and treats each
    segment's end as the end of its data: actions after ``stop - 1`` are padding and the
    future observation stops at step ``stop`` (the state the segment's last action led to).
    Observation history may reach back before ``start`` (it happened).  Segments may
    overlap (one step can anchor several tasks); ``anchor_segment`` says whose a sample is.
    Without ``segments`` every selected episode is one segment.
    """

    def __init__(self, episode_ends: np.ndarray, n_obs: int, horizon: int,
                 episodes: np.ndarray | None = None, segments: np.ndarray | None = None):
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
        if segments is None:
            seg = np.stack([eps, np.zeros_like(eps), ends[eps] - starts[eps]], 1)
        else:
            seg = np.asarray(segments, dtype=np.int64).reshape(-1, 3)
            length = ends[seg[:, 0]] - starts[seg[:, 0]] if len(seg) else seg[:, 0]
            bad = (seg[:, 1] < 0) | (seg[:, 2] <= seg[:, 1]) | (seg[:, 2] > length)
            if bad.any():
                raise ValueError(f"segment rows {seg[bad][:3].tolist()} are empty or outside "
                                 f"their episode (episode, start, stop)")
        self.segments = seg
        # global step bounds of each segment: anchors in [lo, stop), data up to hi
        seg_lo = starts[seg[:, 0]] + seg[:, 1]
        self.seg_last = starts[seg[:, 0]] + seg[:, 2] - 1  # last action step
        lengths = seg[:, 2] - seg[:, 1]
        # anchors: every step of every segment, in segment order
        self.anchor_segment = np.repeat(np.arange(len(seg)), lengths)
        self.anchor_episode = seg[self.anchor_segment, 0]
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        self.anchors = seg_lo[self.anchor_segment] + offsets

    def __len__(self) -> int:
        return int(len(self.anchors))

    def windows(self, idx: np.ndarray | int) -> WindowIndices:
        """Window indices for sample ids ``idx`` (positions in ``self.anchors``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        t = self.anchors[idx]
        ep = self.anchor_episode[idx]
        lo = self.ep_start[ep][:, None]
        hi_obs = self.ep_end[ep][:, None] - 1
        hi = self.seg_last[self.anchor_segment[idx]][:, None]
        obs = t[:, None] + np.arange(-self.n_obs + 1, 1)[None, :]
        act = t[:, None] + np.arange(self.horizon)[None, :]
        obs_pad, act_pad = (obs < lo) | (obs > hi_obs), (act < lo) | (act > hi)
        return WindowIndices(np.clip(obs, lo, hi_obs), obs_pad, np.clip(act, lo, hi), act_pad,
                             ep, t)

    def future(self, idx: np.ndarray | int, offset: int) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
        """The observation window ending ``offset`` steps after each anchor (``s_{t+k}``).

        Returns ``obs`` int64 (B, n_obs) clipped into the episode (and for segments, to
        the step after the segment's last action), ``obs_pad`` (B, n_obs) and ``beyond``
        (B,): True where ``t + offset`` is past the data's end, so the window was clipped
        to the final observation (the episode or segment ended inside the chunk).
        """
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        t = self.anchors[idx] + offset
        ep = self.anchor_episode[idx]
        lo, last, hi = self.ep_start[ep], *self._future_bounds(idx)
        beyond = t > last
        t = np.minimum(t, hi)
        obs = t[:, None] + np.arange(-self.n_obs + 1, 1)[None, :]
        pad = obs < lo[:, None]
        return np.clip(obs, lo[:, None], hi[:, None]), pad, beyond

    def future_steps(self, idx: np.ndarray | int, offset: int) -> np.ndarray:
        """Steps from each anchor to its future observation (``offset``, fewer where the
        data ended first): the exponent of the discount between s_t and s_{t+k}."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        _, hi = self._future_bounds(idx)
        return np.minimum(self.anchors[idx] + offset, hi) - self.anchors[idx]

    def _future_bounds(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: the segment's last action step, and the last step a future
        observation may read (the state after that action, within the episode)."""
        last = self.seg_last[self.anchor_segment[idx]]
        return last, np.minimum(last + 1, self.ep_end[self.anchor_episode[idx]] - 1)


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
