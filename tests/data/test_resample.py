import numpy as np
import pytest

from robolearn.data.resample import Resampler


def _feed(r, events):
    out = []
    for s, t in events:
        out += r.push(s, t, t)
    return out + r.flush()


def test_hold_takes_latest_at_or_before_tick_within_max_age():
    r = Resampler(["a", "b"], ["a", "b"], rate=10.0, policy="hold", max_age=0.15)
    ev = sorted([("a", k / 100) for k in range(100)] + [("b", k / 7 + 0.01) for k in range(7)],
                key=lambda e: e[1])
    ticks = _feed(r, ev)
    assert [round(t, 6) for t, _ in ticks] == [round(k / 10, 6) for k in range(10)]
    for t, v in ticks:
        if v is None:
            continue
        assert v["a"] <= t + 1e-9 and t - v["a"] < 0.0101
        assert v["b"] <= t + 1e-9 and t - v["b"] <= 0.15
    # b is 1/7 s apart: ticks more than 0.15 s after a b-sample are dropped (None)
    assert ticks[0][1] is None  # no b sample at or before t=0


def test_nearest_looks_ahead():
    r = Resampler(["a"], ["a"], rate=2.0, policy="nearest", max_age=0.2)
    ticks = _feed(r, [("a", 0.0), ("a", 0.45), ("a", 1.1)])
    assert [(t, v and v["a"]) for t, v in ticks] == [(0.0, 0.0), (0.5, 0.45), (1.0, 1.1)]


def test_bad_policy():
    with pytest.raises(ValueError, match="policy"):
        Resampler(["a"], ["a"], 10.0, policy="linear")
