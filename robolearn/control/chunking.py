"""Real-time chunking: execute action chunks at a fixed rate while the next one is inferred.

Every chunk is predicted from the observation of one control tick ``k0`` and its action
``i`` belongs to tick ``k0 + i``.  The executor keeps a *plan* (tick -> action).  Once
``execute_steps`` actions of the current chunk have run it asks for the next chunk; the
policy runs in the background from the newest observation while the plan keeps
executing, so the arm never waits on inference.  When the new chunk arrives ``d`` ticks
later, its first ``d`` actions are already in the past and are dropped; over the next
``blend_steps`` ticks the old and new plans are cross-faded linearly (the seam), after that
the new chunk alone runs.  If a chunk arrives so late that the plan ran dry, the last
action is held (counted as a starvation tick) - the arm holds still rather than jump - and
the next chunk fades in from the held command the same way (as does the first one).

Chunks have the time base of the data the policy learned from (one step = 1/fps s); the
control loop may tick faster (a 10 Hz policy on a 50 Hz joint controller).  With
``ratio = control_hz / policy_hz != 1`` every chunk is linearly interpolated onto control
ticks, and ``execute_steps`` / ``blend_steps`` (given in chunk steps) are scaled to ticks,
so the arm moves at the speed it was taught whatever the control rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ChunkStats:
    chunks: int = 0
    starved_ticks: int = 0
    dropped_actions: int = 0  # stale actions of late chunks (inference delay, in ticks)


def resample_chunk(chunk: np.ndarray, ratio: float, anchor: np.ndarray | None = None
                   ) -> np.ndarray:
    """(H, D) chunk -> one action per control tick, ``ratio`` = control ticks per chunk step
    (control_hz / policy_hz).

    Action i is the set-point to reach i + 1 chunk steps after the observation (the env's
    ``step(a)`` semantics), and ``anchor`` (the command of the observation's tick; default:
    action 0) is the set-point at 0.  The command of tick j is the linear set-point
    trajectory at (j + 1) / ratio chunk steps, so ratio 1 returns the chunk unchanged and a
    faster loop ramps smoothly instead of jumping to action 0 in one tick."""
    chunk = np.asarray(chunk, float)
    if abs(ratio - 1.0) < 1e-9:
        return chunk
    h = len(chunk)
    knots = np.concatenate([chunk[:1] if anchor is None else
                            np.asarray(anchor, float).reshape(1, -1), chunk])  # times 0..H
    s = (np.arange(int(np.floor(h * ratio + 1e-9))) + 1) / ratio
    i0 = np.minimum(np.floor(s).astype(int), h - 1)
    w = (s - i0)[:, None]
    return (1 - w) * knots[i0] + w * knots[i0 + 1]


class RealTimeChunker:
    def __init__(self, horizon: int, execute_steps: int, blend_steps: int = 4,
                 ratio: float = 1.0):
        """``horizon``, ``execute_steps``, ``blend_steps`` in chunk steps; ``ratio`` =
        control_hz / policy_hz (ticks per chunk step)."""
        if not 1 <= execute_steps <= horizon:
            raise ValueError(f"execute_steps must be in [1, horizon={horizon}], got "
                             f"{execute_steps}")
        if blend_steps < 0:
            raise ValueError(f"blend_steps must be >= 0, got {blend_steps}")
        if not ratio > 0:
            raise ValueError(f"ratio (control_hz / policy_hz) must be > 0, got {ratio}")
        self.ratio = float(ratio)
        # from here on everything counts control ticks
        self.horizon = max(1, int(np.floor(horizon * ratio + 1e-9)))
        self.execute_steps = max(1, min(self.horizon, round(execute_steps * ratio)))
        self.blend_steps = round(blend_steps * ratio)
        self.plan: dict[int, np.ndarray] = {}
        self.last_action: np.ndarray | None = None
        self.stats = ChunkStats()
        self._chunk_start = None  # tick the current chunk's first action belongs to

    def reset(self) -> None:
        """Forget the plan and the held action (new instruction, e-stop, re-activation):
        until the next chunk the caller holds the measured position."""
        self.plan.clear()
        self.last_action = None
        self._chunk_start = None

    def remaining(self, tick: int) -> int:
        return sum(1 for t in self.plan if t >= tick)

    def needs_chunk(self, tick: int) -> bool:
        """True when the current chunk has executed ``execute_steps`` actions (or there is
        none): time to infer the next one from the newest observation."""
        if self._chunk_start is None or not self.plan:
            return True
        return tick - self._chunk_start >= self.execute_steps

    def add_chunk(self, chunk: np.ndarray, obs_tick: int, now_tick: int,
                  anchor: np.ndarray | None = None) -> None:
        """Merge a chunk predicted from the observation of ``obs_tick``, arriving at
        ``now_tick`` (the next action to execute belongs to ``now_tick``).  ``anchor``: the
        command sent at ``obs_tick`` (where a faster control loop starts its ramp)."""
        chunk = resample_chunk(chunk, self.ratio, anchor)
        new = {obs_tick + i: a for i, a in enumerate(chunk) if obs_tick + i >= now_tick}
        self.stats.dropped_actions += len(chunk) - len(new)
        self.stats.chunks += 1
        if not new:
            return  # entirely stale: keep executing the old plan
        old = self.plan
        if not any(t in old for t in new):
            # nothing planned to cross-fade with (first chunk, or the plan ran dry): fade in
            # from the command being held, so a start from rest does not jump either
            hold = self.last_action if self.last_action is not None else anchor
            old = {} if hold is None else {t: np.asarray(hold, float) for t in new}
        overlap = sorted(t for t in new if t in old)[: self.blend_steps]
        for j, t in enumerate(overlap):
            alpha = (j + 1) / (len(overlap) + 1)
            new[t] = (1 - alpha) * old[t] + alpha * new[t]
        self.plan = new
        self._chunk_start = obs_tick

    def pop(self, tick: int) -> np.ndarray | None:
        """The action for ``tick`` (the last one held if the plan ran dry; None before any)."""
        for t in [t for t in self.plan if t < tick]:
            del self.plan[t]
        a = self.plan.pop(tick, None)
        if a is None:
            if self.last_action is not None:
                self.stats.starved_ticks += 1
            return self.last_action
        self.last_action = a
        return a
