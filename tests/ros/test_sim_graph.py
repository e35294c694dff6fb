"""The sim graph (sim_bridge_node + recorder_node), started from the same description the
launch file uses, as real processes on loopback; assertions on the messages that flow."""

import json
import time

import numpy as np
import pytest

from robolearn import keys as K
from robolearn.data.check import check_store
from robolearn.data.store import TrajectoryStore
from robolearn.ros_nodes.graph import graph
from tests.ros.helpers import call, running, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.sim]


@pytest.fixture(scope="module")
def sim_graph(ros_env, tmp_path_factory):
    store = tmp_path_factory.mktemp("rec") / "recorded.zarr"
    specs = graph("sim", task="Reach", cameras="front", image_size="48", control_hz="20.0",
                  camera_hz="10.0", store=str(store), record_rate="5.0")
    with running(specs, ros_env, "robolearn_test", "test_probe") as (node, _, procs):
        yield node, store, procs


def test_bridge_publishes_what_it_claims(sim_graph):
    from geometry_msgs.msg import PoseStamped
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from std_msgs.msg import String

    from robolearn.ros_nodes import messages as M

    node, _, _ = sim_graph
    got = {"js": [], "img": [], "info": [], "pose": [], "ee": [], "clock": [], "instr": [],
           "state": []}
    node.create_subscription(JointState, "joint_states", got["js"].append, M.STATE_QOS)
    node.create_subscription(Image, "front/image_raw", got["img"].append, M.IMAGE_QOS)
    node.create_subscription(CameraInfo, "front/camera_info", got["info"].append, M.STATE_QOS)
    node.create_subscription(PoseStamped, "front/pose", got["pose"].append, M.STATE_QOS)
    node.create_subscription(PoseStamped, "ee_pose", got["ee"].append, M.STATE_QOS)
    node.create_subscription(Clock, "/clock", got["clock"].append, 10)
    node.create_subscription(String, "task/instruction", got["instr"].append, M.LATCHED_QOS)
    node.create_subscription(String, "task/state", got["state"].append, M.STATE_QOS)
    # the instruction is latched: published once per episode
    need = {k: (1 if k == "instr" else 2) for k in got}
    assert spin_until(node, lambda: all(len(v) >= need[k] for k, v in got.items()),
                       timeout=90), {k: len(v) for k, v in got.items()}
    js = got["js"][-1]
    assert len(js.name) == 8 and js.name[-1] == "gripper" and len(js.position) == 8
    img = M.image_array(got["img"][-1])
    assert img.shape == (48, 48, 3) and img.std() > 5  # a rendered scene, not a blank frame
    k = np.array(got["info"][-1].k).reshape(3, 3)
    assert k[0, 0] > 0 and k[0, 0] == k[1, 1] and k[2, 2] == 1
    q = got["pose"][-1].pose.orientation
    assert abs(q.w**2 + q.x**2 + q.y**2 + q.z**2 - 1) < 1e-6
    clocks = [M.to_seconds(c.clock) for c in got["clock"]]
    assert clocks == sorted(clocks) and clocks[-1] > clocks[0]  # sim time only moves forward
    assert got["instr"][-1].data  # the task's language instruction, latched
    st = json.loads(got["state"][-1].data)
    assert st["task"] == "Reach" and "symbolic_state" in st


def test_bridge_follows_joint_commands_and_resets(sim_graph):
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import Trigger

    from robolearn.ros_nodes import messages as M

    node, _, _ = sim_graph
    last = {}
    node.create_subscription(JointState, "joint_states",
                             lambda m: last.__setitem__("q", np.array(m.position)), M.STATE_QOS)
    assert spin_until(node, lambda: "q" in last)
    q0 = last["q"].copy()
    target = q0[:7].copy()
    target[0] += 0.4
    pub = node.create_publisher(Float64MultiArray, "joint_position_command", M.STATE_QOS)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and abs(last["q"][0] - target[0]) > 0.02:
        pub.publish(Float64MultiArray(data=list(target) + [0.0]))
        spin_until(node, lambda: False, timeout=0.2)
    assert abs(last["q"][0] - target[0]) < 0.02, (last["q"][0], target[0])
    # a command of the wrong length is ignored (the arm holds)
    pub.publish(Float64MultiArray(data=[9.0, 9.0]))
    spin_until(node, lambda: False, timeout=1.0)
    assert abs(last["q"][0] - target[0]) < 0.02
    res = call(node, Trigger, "sim_bridge/reset", Trigger.Request())
    assert res.success and "Reach" in res.message
    assert spin_until(node, lambda: abs(last["q"][0] - q0[0]) < 0.05, timeout=30)


def test_recorder_writes_a_valid_episode(sim_graph):
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import Trigger

    from robolearn.ros_nodes import messages as M

    node, store_path, _ = sim_graph
    res = call(node, Trigger, "recorder/start", Trigger.Request())
    assert res.success, res.message
    pub = node.create_publisher(Float64MultiArray, "joint_position_command", M.STATE_QOS)
    cmd = [0.1, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785, 0.5]
    t_end = time.monotonic() + 6.0
    while time.monotonic() < t_end:
        pub.publish(Float64MultiArray(data=cmd))
        spin_until(node, lambda: False, timeout=0.1)
    res = call(node, Trigger, "recorder/stop", Trigger.Request())
    assert res.success, res.message
    assert check_store(str(store_path)).ok
    store = TrajectoryStore.open(store_path)
    assert store.n_episodes == 1
    ep = store.get_episode(0)
    n = len(ep[K.ACTION])
    assert n >= 3
    assert ep[K.image_key("front")].shape == (n, 48, 48, 3)
    np.testing.assert_allclose(ep[K.ACTION][-1], cmd, atol=1e-6)
    meta = store.episode_meta(0)
    assert meta["fps"] == 5.0 and meta["task"] == "Reach" and meta["instruction"]
    # stamps are 1/rate apart in sim time: the recorder resampled, it did not just append
    res = call(node, Trigger, "recorder/stop", Trigger.Request())
    assert not res.success and "not recording" in res.message
