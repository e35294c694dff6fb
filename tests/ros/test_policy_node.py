"""policy_node against the sim bridge, as real processes: lifecycle, chunked control at the
configured rate, joint limits, e-stop latch, stale-input hold and non-finite outputs."""

import json
import time

import numpy as np
import pytest
import torch

from robolearn.ros_nodes.graph import NodeSpec, graph
from tests.ros.helpers import call, running, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.sim]

CONTROL_HZ = 10.0
REACH_CONTROL_HZ = 30.0


def _checkpoint(path, nan=False, action_space=""):
    """A tiny bc policy for the Panda's 15-D state and 8-D action, reading the front camera."""
    from robolearn.policies.bc.config import BCConfig
    from robolearn.policies.testing import synthetic_policy

    pol, _ = synthetic_policy("bc", BCConfig.tiny())
    pol.config.action_space = action_space
    if nan:
        with torch.no_grad():
            next(pol.parameters()).fill_(float("nan"))
    pol.save_pretrained(path)
    return str(path)


#: the joint target the trained "reach" policy learned to drive the Panda to
Q_TARGET = np.array([0.3, -0.1, -0.2, -1.9, 0.2, 1.7, 0.785])


def _reach_checkpoint(d):
    """A state-only bc policy trained by robolearn-train on sim demos of a proportional
    joint controller that steps the Panda toward Q_TARGET (at most 0.08 rad per 10 Hz step)
    from varied starting poses (states recorded from the real sim, as a collector would)."""
    from robolearn import keys as K
    from robolearn.cli.train import main
    from robolearn.data.store import TrajectoryStore
    from robolearn.envs import make_env
    from robolearn.envs.demos import state_vector
    from robolearn.training.checkpoint import latest_checkpoint

    rng = np.random.default_rng(0)
    env = make_env("Reach", cameras={"names": []})
    st = TrajectoryStore.create(d / "reach.zarr")
    for ep in range(24):
        obs, _ = env.reset(seed=ep)
        start = obs["joint_pos"] + rng.uniform(-0.4, 0.4, 7)
        for _ in range(6):  # move to a varied starting pose first (not recorded)
            obs, *_ = env.step(np.r_[start, 0.0].astype(np.float32))
        states, acts = [], []
        for _ in range(25):
            q = obs["joint_pos"].astype(float)
            a = np.r_[q + np.clip(Q_TARGET - q, -0.08, 0.08), 0.0].astype(np.float32)
            states.append(state_vector(obs))
            acts.append(a)
            obs, *_ = env.step(a)
        n = len(states)
        st.append_episode(
            {K.OBS_STATE: np.stack(states), K.ACTION: np.stack(acts),
             K.REWARD: np.zeros(n, np.float32), K.DONE: np.arange(n) == n - 1,
             K.LANGUAGE: "reach the target", K.SKILL: "reach"},
            {K.META_TASK: "Reach", K.META_INSTRUCTION: "reach the target",
             K.META_SUCCESS: True, K.META_ROBOT: "panda", K.META_FPS: 10,
             K.META_ACTION_SPACE: "joint_pos", K.META_SOURCE: "test"})
    env.close()
    st.close()
    assert main(["train/bc_tiny", f"data.store={d / 'reach.zarr'}", f"out_dir={d / 'run'}",
                 "steps=600", "data.batch_size=64", "data.val_ratio=0", "val_every=0",
                 "policy.hidden_dim=128", "optim.lr=3e-3", "optim.warmup_steps=20",
                 "progress=false"]) == 0
    ckpt = latest_checkpoint(d / "run") / "policy_ema"
    saved = json.loads((ckpt / "config.json").read_text())["config"]
    assert saved["fps"] == 10.0 and saved["action_space"] == "joint_pos"  # from the store
    return str(ckpt)


@pytest.fixture(scope="module")
def policy_graph(ros_env, tmp_path_factory):
    d = tmp_path_factory.mktemp("policy")
    specs = [s for s in graph("sim", task="Reach", cameras="front", image_size="32",
                              control_hz="20.0", camera_hz="10.0")
             if s.executable == "sim_bridge_node"]
    specs.append(NodeSpec("policy_node", "policy", ["policy.yaml"], {
        "checkpoint": _checkpoint(d / "good"), "control_hz": CONTROL_HZ}))
    specs.append(NodeSpec("policy_node", "policy_nan", ["policy.yaml"], {
        "checkpoint": _checkpoint(d / "nan", nan=True), "control_hz": CONTROL_HZ,
        "autostart": True}, remappings=[("joint_position_command", "nan_command")]))
    specs.append(NodeSpec("policy_node", "policy_bad", [], {
        "checkpoint": str(d / "missing")}))
    # end-effector deltas must never be sent as joint position commands
    specs.append(NodeSpec("policy_node", "policy_ee", [], {
        "checkpoint": _checkpoint(d / "ee", action_space="ee_delta")}))
    # trained on 10 Hz data, run on a 30 Hz loop: chunks must keep their 10 Hz time base
    specs.append(NodeSpec("policy_node", "policy_reach", ["policy.yaml"], {
        "checkpoint": _reach_checkpoint(d), "control_hz": REACH_CONTROL_HZ}))
    with running(specs, ros_env, "robolearn_policy", "policy_probe") as (node, _, procs):
        yield node, procs


class Probe:
    """Collects commands, joint states and the policy nodes' diagnostics."""

    def __init__(self, node):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from robolearn.ros_nodes import messages as M

        self.node = node
        self.cmd, self.nan_cmd, self.js, self.diag = [], [], [], {}
        node.create_subscription(Float64MultiArray, "joint_position_command",
                                 lambda m: self.cmd.append((time.monotonic(), np.array(m.data))),
                                 M.STATE_QOS)
        node.create_subscription(Float64MultiArray, "nan_command",
                                 lambda m: self.nan_cmd.append(np.array(m.data)), M.STATE_QOS)
        node.create_subscription(JointState, "joint_states",
                                 lambda m: self.js.append(np.array(m.position)), M.STATE_QOS)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_diag(self, msg):
        for st in msg.status:
            self.diag[st.hardware_id] = (st.level, {kv.key: kv.value for kv in st.values})

    def wait(self, seconds):
        spin_until(self.node, lambda: False, timeout=seconds)


def _change_state(node, name, transition_id):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    req = ChangeState.Request()
    req.transition = Transition(id=transition_id)
    return call(node, ChangeState, f"{name}/change_state", req, timeout=90).success


def test_policy_node_lifecycle_control_and_safety(policy_graph):
    from lifecycle_msgs.msg import Transition
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool, Trigger

    from robolearn.control import JointLimits
    from robolearn.ros_nodes import messages as M

    node, _ = policy_graph
    probe = Probe(node)
    assert spin_until(node, lambda: len(probe.js) > 2, timeout=90)
    probe.wait(1.0)
    assert not probe.cmd  # unconfigured: the policy commands nothing
    assert _change_state(node, "policy", Transition.TRANSITION_CONFIGURE)
    assert _change_state(node, "policy", Transition.TRANSITION_ACTIVATE)

    # 1. chunked control at the configured rate, inside the joint limits
    assert spin_until(node, lambda: len(probe.cmd) >= 30, timeout=60), len(probe.cmd)
    t = np.array([c[0] for c in probe.cmd[-25:]])
    assert 1 / np.median(np.diff(t)) == pytest.approx(CONTROL_HZ, rel=0.3)
    lim = JointLimits.for_robot("panda")
    cmds = np.stack([c[1] for c in probe.cmd])
    assert np.all(np.isfinite(cmds)) and cmds.shape[1] == 8
    assert np.all(cmds[:, :7] >= lim.lower - 1e-9) and np.all(cmds[:, :7] <= lim.upper + 1e-9)
    steps = np.abs(np.diff(cmds[:, :7], axis=0))
    assert np.all(steps <= lim.max_velocity / CONTROL_HZ + 1e-6)  # never faster than rated
    assert spin_until(node, lambda: "policy" in probe.diag
                      and int(probe.diag["policy"][1]["chunks"]) >= 2, timeout=30)
    level, d = probe.diag["policy"]
    assert d["status"] == "running" and float(d["inference_ms_p50"]) > 0
    assert int(d["clamped"]) > 0  # an untrained policy asks for too much: clamped, warned

    # 2. e-stop latches: commands hold the measured position until ~/reset_estop
    pub = node.create_publisher(Bool, "estop", M.STATE_QOS)
    pub.publish(Bool(data=True))
    probe.wait(1.5)
    pub.publish(Bool(data=False))  # releasing the button does not un-latch
    n0 = len(probe.cmd)
    probe.wait(1.5)
    held = np.stack([c[1] for c in probe.cmd[n0:]])
    assert len(held) >= 5
    assert np.abs(held[:, :7] - probe.js[-1][None, :7]).max() < 0.02  # the arm stands still
    assert spin_until(node, lambda: probe.diag["policy"][1]["estop"] == "True", timeout=5)
    assert call(node, Trigger, "policy/reset_estop", Trigger.Request()).success
    assert spin_until(node, lambda: probe.diag["policy"][1]["status"] == "running", timeout=20)

    # 3. stale inputs (the robot stops publishing) -> hold, reported
    assert call(node, SetBool, "sim_bridge/pause", SetBool.Request(data=True)).success
    assert spin_until(node, lambda: "stale" in probe.diag["policy"][1]["status"], timeout=20), \
        probe.diag["policy"]
    assert int(probe.diag["policy"][1]["stale_holds"]) > 0
    assert call(node, SetBool, "sim_bridge/pause", SetBool.Request(data=False)).success
    assert spin_until(node, lambda: probe.diag["policy"][1]["status"] == "running", timeout=20)

    # 4. a policy that outputs NaN: holds (finite commands) and reports an error
    assert spin_until(node, lambda: "policy_nan" in probe.diag
                      and int(probe.diag["policy_nan"][1]["nonfinite"]) > 0, timeout=30)
    level, _ = probe.diag["policy_nan"]
    from diagnostic_msgs.msg import DiagnosticStatus

    assert level == DiagnosticStatus.ERROR
    assert probe.nan_cmd and all(np.all(np.isfinite(c)) for c in probe.nan_cmd)

    # 5. deactivate: no more commands
    assert _change_state(node, "policy", Transition.TRANSITION_DEACTIVATE)
    probe.wait(0.5)
    n0 = len(probe.cmd)
    probe.wait(1.5)
    assert len(probe.cmd) == n0


def test_configure_fails_cleanly_on_a_bad_checkpoint(policy_graph):
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import GetState

    node, _ = policy_graph
    for name in ("policy_bad", "policy_ee"):  # no checkpoint; an ee_delta policy
        assert not _change_state(node, name, Transition.TRANSITION_CONFIGURE)
        st = call(node, GetState, f"{name}/get_state", GetState.Request())
        assert st.current_state.id == State.PRIMARY_STATE_UNCONFIGURED


def test_a_trained_policy_drives_the_arm_to_its_target(policy_graph):
    """Runs after the lifecycle test has deactivated `policy`: the trained reach policy
    takes over the arm and closes the loop through the sim to the joint target, on a
    control loop 3x faster than its training data, at the speed it was taught."""
    from lifecycle_msgs.msg import Transition

    from std_srvs.srv import Trigger

    node, _ = policy_graph
    assert call(node, Trigger, "sim_bridge/reset", Trigger.Request()).success  # arm near home
    probe = Probe(node)
    assert spin_until(node, lambda: len(probe.js) > 2, timeout=60)
    probe.wait(1.0)
    d0 = np.linalg.norm(probe.js[-1][:7] - Q_TARGET)
    assert d0 > 0.3, d0  # the arm starts well away from the target
    # the lifecycle test's e-stop latched in every policy node of the namespace: release it
    assert call(node, Trigger, "policy_reach/reset_estop", Trigger.Request()).success
    assert _change_state(node, "policy_reach", Transition.TRANSITION_CONFIGURE)
    n_cmd = len(probe.cmd)
    assert _change_state(node, "policy_reach", Transition.TRANSITION_ACTIVATE)
    dist = lambda: np.linalg.norm(probe.js[-1][:7] - Q_TARGET)  # noqa: E731
    assert spin_until(node, lambda: dist() < 0.15, timeout=60), (d0, dist(),
                                                                 probe.diag.get("policy_reach"))
    # the demos step at most 0.08 rad per 0.1 s (0.8 rad/s); executing one chunk step per
    # 30 Hz tick would triple that (to the clamp at the rated speed, >= 2.17 rad/s)
    cmds = np.array([c for _, c in probe.cmd[n_cmd:]])[:, :7]
    speed = np.abs(np.diff(cmds, axis=0)).max() * REACH_CONTROL_HZ
    sp = np.abs(np.diff(cmds, axis=0)).max(1) * REACH_CONTROL_HZ
    assert 0.3 < speed < 1.3, (speed, np.round(sp[:60], 2).tolist(), len(cmds))
    trace = []
    spin_until(node, lambda: trace.append(round(float(dist()), 2)), timeout=2.0)
    assert dist() < 0.15, trace  # and it stays there
    assert _change_state(node, "policy_reach", Transition.TRANSITION_DEACTIVATE)
