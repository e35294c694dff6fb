"""Align streams of different rates onto one fixed-rate clock, with an explicit policy.

Used by the rosbag converter and the ROS recorder node, so a bag converted offline and
the same topics recorded live give the same steps.

* ``hold``: at tick ``t`` a stream contributes its latest sample with time <= t, if that
  sample is at most ``max_age`` old (causal: what a controller at this rate would see);
* ``nearest``: the sample closest to ``t`` within ``max_age`` either side (needs
  ``max_age`` of look-ahead, so ticks come out that much later).

A tick where a required stream has no valid sample comes out as ``(t, None)`` so the
caller can count it. The first tick is the first sample's time (call :meth:`reset` to
start a new episode's clock).
"""

from __future__ import annotations

from typing import Any, Sequence

POLICIES = ("hold", "nearest")


class Resampler:
    """Feed time-ordered ``push(stream, t, value)``; get ``[(tick, {stream: value} | None)]``."""

    def __init__(self, streams: Sequence[str], required: Sequence[str], rate: float,
                 policy: str = "hold", max_age: float = 0.25):
        if policy not in POLICIES:
            raise ValueError(f"alignment policy must be one of {POLICIES}, got {policy!r}")
        if rate <= 0 or max_age < 0:
            raise ValueError(f"rate must be > 0 and max_age >= 0 (got {rate}, {max_age})")
        self.streams, self.required = list(streams), set(required)
        self.policy, self.max_age, self.dt = policy, float(max_age), 1.0 / rate
        self.look = self.max_age if policy == "nearest" else 0.0
        self.reset()

    def reset(self) -> None:
        self.buf: dict[str, list[tuple[float, Any]]] = {s: [] for s in self.streams}
        self.next_tick: float | None = None

    def push(self, stream: str, t: float, value) -> list[tuple[float, dict | None]]:
        if self.next_tick is None:
            self.next_tick = t
        self.buf[stream].append((t, value))
        return self._emit(t)

    def advance(self, now: float) -> list[tuple[float, dict | None]]:
        """Emit the ticks that are due at time ``now`` without a new sample (live use)."""
        return self._emit(now)

    def flush(self) -> list[tuple[float, dict | None]]:
        """Every remaining tick up to the last sample (end of an episode)."""
        return self._emit(float("inf"), final=True)

    def _pick(self, stream: str, tick: float):
        best = None
        for t, v in self.buf[stream]:
            if self.policy == "hold":
                if t <= tick + 1e-9 and tick - t <= self.max_age:
                    best = (t, v)
            elif abs(t - tick) <= self.max_age and (best is None or abs(t - tick) < abs(best[0] - tick)):
                best = (t, v)
        return best

    def _emit(self, now: float, final: bool = False) -> list[tuple[float, dict | None]]:
        out = []
        last_seen = max((b[-1][0] for b in self.buf.values() if b), default=None)

        def due(tick: float) -> bool:
            if final:  # end of an episode: every tick up to the last sample
                return last_seen is not None and tick <= last_seen + 1e-9
            return now > tick + self.look  # every sample that could serve `tick` was seen

        while self.next_tick is not None and due(self.next_tick):
            tick = self.next_tick
            values = {}
            for s in self.streams:
                p = self._pick(s, tick)
                if p is not None:
                    values[s] = p[1]
            ok = all(s in values for s in self.required)
            out.append((tick, values if ok else None))
            self.next_tick = tick + self.dt
            # forget samples no later tick can use (keep the latest one for hold)
            horizon = self.next_tick - self.max_age
            for b in self.buf.values():
                while len(b) > 1 and b[1][0] <= horizon:
                    b.pop(0)
        return out
