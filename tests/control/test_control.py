"""Safety limits and real-time chunking, without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.control import JointLimits, RealTimeChunker
from robolearn.control.chunking import resample_chunk


def _limits():
    return JointLimits(lower=[-1, -1], upper=[1, 1], max_velocity=[2.0, 0.5])


def test_limits_clamp_position_velocity_and_gripper():
    lim = _limits()
    a, rep = lim.apply(np.array([5.0, 0.0, 1.7]), last=np.array([0.9, 0.0]), dt=0.1)
    assert a.tolist() == [1.0, 0.0, 1.0]
    assert rep.position_clamped == [0] and rep.velocity_clamped == [] and rep.clamped
    a, rep = lim.apply(np.array([0.5, 0.5, -0.2]), last=np.array([0.0, 0.0, 0.0]), dt=0.1)
    assert a == pytest.approx([0.2, 0.05, 0.0])  # 2 rad/s and 0.5 rad/s for 0.1 s
    assert rep.velocity_clamped == [0, 1]
    a, rep = lim.apply(np.array([0.1, -0.01, 0.5]), last=np.zeros(2), dt=0.1)
    assert not rep.clamped and a.tolist() == [0.1, -0.01, 0.5]


def test_limits_reject_bad_config_and_actions():
    with pytest.raises(ValueError, match="lower must be < upper"):
        JointLimits([0.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="max_velocity must be > 0"):
        JointLimits([0.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="2 joints \\+ gripper = 3"):
        _limits().apply(np.zeros(4), np.zeros(2), 0.1)


@pytest.mark.sim
def test_limits_of_the_panda_come_from_its_model():
    lim = JointLimits.for_robot("panda")
    assert lim.n_joints == 7
    assert lim.lower[3] == pytest.approx(-3.0718, abs=1e-3)  # Franka joint 4
    assert lim.upper[5] == pytest.approx(3.7525, abs=1e-3)
    assert lim.max_velocity[0] == pytest.approx(2.175)


def _run(chunker, delay, ticks=40, offset_per_chunk=1.0):
    """Execute with a policy whose chunks are ramps (value = tick) shifted by a growing
    offset (a model that changes its mind), arriving ``delay`` ticks after the request."""
    pending, out, n = [], [], 0
    for tick in range(ticks):
        ready = [p for p in pending if p[0] <= tick]
        for p in ready:
            chunker.add_chunk(p[2], obs_tick=p[1], now_tick=tick)
            pending.remove(p)
        if chunker.needs_chunk(tick) and not pending:
            n += 1
            chunk = np.arange(tick, tick + chunker.horizon, dtype=float)[:, None] + n * offset_per_chunk
            pending.append((tick + delay, tick, chunk))
        a = chunker.pop(tick)
        out.append(np.nan if a is None else float(a[0]))
    return np.array(out)


def test_chunks_execute_without_waiting_and_blend_at_the_seam():
    # old and new chunks overlap by horizon - execute_steps - delay = 4 ticks >= blend_steps
    blended = RealTimeChunker(horizon=10, execute_steps=4, blend_steps=3)
    hard = RealTimeChunker(horizon=10, execute_steps=4, blend_steps=0)
    a = _run(blended, delay=2)
    b = _run(hard, delay=2)
    assert blended.stats.starved_ticks == 0  # the next chunk always arrived in time
    assert blended.stats.dropped_actions == 2 * blended.stats.chunks  # the delay, per chunk
    steady = slice(10, 40)
    jumps_blend = np.abs(np.diff(a[steady]) - 1.0).max()  # deviation from the unit ramp
    jumps_hard = np.abs(np.diff(b[steady]) - 1.0).max()
    assert jumps_hard == pytest.approx(1.0)  # switching chunks jumps by the offset
    assert jumps_blend <= 0.26  # cross-faded over 3 ticks: at most 1/4 of it per tick


def test_a_plan_that_runs_dry_holds_the_last_action():
    ch = RealTimeChunker(horizon=4, execute_steps=2, blend_steps=0)
    assert ch.pop(0) is None  # nothing yet: the caller holds position
    ch.add_chunk(np.arange(4.0)[:, None], obs_tick=0, now_tick=0)
    assert [float(ch.pop(t)[0]) for t in range(6)] == [0, 1, 2, 3, 3, 3]
    assert ch.stats.starved_ticks == 2
    # a chunk that is stale on arrival changes nothing
    ch.add_chunk(np.full((4, 1), 9.0), obs_tick=0, now_tick=10)
    assert float(ch.pop(10)[0]) == 3.0 and ch.stats.dropped_actions == 4


def test_chunks_keep_the_policy_time_base_on_a_faster_control_loop():
    # a 10 Hz policy on a 50 Hz loop: action i is the set-point 0.1 * (i + 1) s after the
    # observation; from the anchor (the command at the observation) the loop ramps to it
    chunk = np.arange(1.0, 9.0)[:, None] * np.array([[1.0, -2.0]])
    up = resample_chunk(chunk, 5.0, anchor=np.zeros(2))
    assert up.shape == (40, 2)  # 8 chunk steps x 5 ticks
    np.testing.assert_allclose(up[4::5], chunk)  # each action on the tick that reaches it
    np.testing.assert_allclose(np.diff(up, axis=0), np.tile([[0.2, -0.4]], (39, 1)))
    np.testing.assert_allclose(up[0], [0.2, -0.4])  # no jump to action 0 in one tick
    np.testing.assert_array_equal(resample_chunk(chunk, 1.0, anchor=np.zeros(2)), chunk)
    np.testing.assert_allclose(resample_chunk(chunk, 0.5), chunk[1::2])  # a 5 Hz loop

    ch = RealTimeChunker(horizon=8, execute_steps=4, blend_steps=2, ratio=5.0)
    assert (ch.horizon, ch.execute_steps, ch.blend_steps) == (40, 20, 10)
    ch.add_chunk(chunk, obs_tick=0, now_tick=0, anchor=np.zeros(2))
    got = np.array([ch.pop(t) for t in range(20)])
    # 20 ticks = 0.4 s cover 4 chunk steps of motion: the speed it was taught
    np.testing.assert_allclose(got[-1], chunk[3])
    assert ch.needs_chunk(20) and not ch.needs_chunk(19)
    with pytest.raises(ValueError, match="ratio"):
        RealTimeChunker(horizon=8, execute_steps=4, ratio=0.0)


def test_a_first_chunk_fades_in_from_the_held_command():
    ch = RealTimeChunker(horizon=6, execute_steps=3, blend_steps=2)
    ch.add_chunk(np.full((6, 1), 3.0), obs_tick=0, now_tick=1, anchor=np.zeros(1))
    assert [float(ch.pop(t)[0]) for t in range(1, 5)] == [1.0, 2.0, 3.0, 3.0]
    ch.reset()  # e.g. an e-stop: nothing is held any more, the caller holds measured
    assert ch.pop(5) is None and ch.last_action is None
