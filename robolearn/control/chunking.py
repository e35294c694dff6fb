"""Real-time chunking: execute action chunks at a fixed rate while the next one is inferred.

Every chunk is predicted from the observation of one control tick ``k0`` and its action
``i`` belongs to tick ``k0 + i``.  The executor keeps a *plan* (tick -> action).  Once
``execute_steps`` actions of the current chunk have run it asks for the next chunk; the
policy runs in the background from the newest observation while the plan keeps
executing, so the arm never waits on inference.  When the new chunk arrives ``d`` ticks
later, its first ``d`` actions are already in the past and are dropped; over the next
``blend_steps`` ticks the old and new plans are cross-faded linearly (the seam), after that
the new chunk alone runs.  If a chunk arrives so late that the plan ran dry, the last
action is held (counted as a starvation tick) - the arm holds still rather than jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ChunkStats:
    chunks: int = 0
    starved_ticks: int = 0
    dropped_actions: int = 0  # stale actions of late chunks (inference delay, in ticks)


class RealTimeChunker:
    def __init__(self, horizon: int, execute_steps: int, blend_steps: int = 4):
        if not 1 <= execute_steps <= horizon:
            raise ValueError(f"execute_steps must be in [1, horizon={horizon}], got "
                             f"{execute_steps}")
        if blend_steps < 0:
            raise ValueError(f"blend_steps must be >= 0, got {blend_steps}")
        self.horizon, self.execute_steps, self.blend_steps = horizon, execute_steps, blend_steps
        self.plan: dict[int, np.ndarray] = {}
        self.last_action: np.ndarray | None = None
        self.stats = ChunkStats()
        self._chunk_start = None  # tick the current chunk's first action belongs to

    def reset(self) -> None:
        """Forget the plan (new instruction, e-stop, re-activation)."""
        self.plan.clear()
        self._chunk_start = None

    def remaining(self, tick: int) -> int:
        return sum(1 for t in self.plan if t >= tick)

    def needs_chunk(self, tick: int) -> bool:
        """True when the current chunk has executed ``execute_steps`` actions (or there is
        none): time to infer the next one from the newest observation."""
        if self._chunk_start is None or not self.plan:
            return True
        return tick - self._chunk_start >= self.execute_steps

    def add_chunk(self, chunk: np.ndarray, obs_tick: int, now_tick: int) -> None:
        """Merge a chunk predicted from the observation of ``obs_tick``, arriving at
        ``now_tick`` (the next action to execute belongs to ``now_tick``)."""
        chunk = np.asarray(chunk, float)
        new = {obs_tick + i: a for i, a in enumerate(chunk) if obs_tick + i >= now_tick}
        self.stats.dropped_actions += len(chunk) - len(new)
        self.stats.chunks += 1
        if not new:
            return  # entirely stale: keep executing the old plan
        overlap = sorted(t for t in new if t in self.plan)[: self.blend_steps]
        for j, t in enumerate(overlap):
            alpha = (j + 1) / (len(overlap) + 1)
            new[t] = (1 - alpha) * self.plan[t] + alpha * new[t]
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
