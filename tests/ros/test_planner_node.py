"""planner_node as a real process with the embedded LLM planner: plans an instruction from
the observed facts, re-conditions the policy with each step's instruction, advances when
the step's effects are observed, re-plans after a timeout and gives up after max_replans."""

import json
import os

import pytest

from robolearn.ros_nodes.graph import NodeSpec
from tests.ros.helpers import spin_until, start, stop

pytestmark = [pytest.mark.ros, pytest.mark.sim]


@pytest.fixture(scope="module")
def scene_facts():
    """Facts of a real scene before and after the scripted open_drawer skill."""
    from robolearn.envs.skills import run_skill
    from robolearn.skills.execute import facts_of, make_env

    env = make_env("OpenDrawer")
    env.reset(seed=0)
    before = facts_of(env)
    assert run_skill(env, "open_drawer", {})
    after = facts_of(env)
    env.close()
    assert before != after
    return before, after


def test_planner_node_sequences_replans_and_fails_cleanly(ros_env, tmp_path, scene_facts):
    import rclpy
    from std_msgs.msg import String

    from robolearn.ros_nodes import messages as M

    before, after = scene_facts
    ns = f"robolearn_planner_{os.getpid()}"
    spec = NodeSpec("planner_node", "planner", ["planner.yaml"], {
        "library": str(tmp_path / "skills.db"), "step_timeout": 4.0, "max_replans": 1},
        namespace=ns)
    procs = start([spec], ros_env)
    rclpy.init()
    node = rclpy.create_node("planner_probe", namespace=ns)
    got = {"instr": [], "plan": [], "status": []}
    node.create_subscription(String, "policy/instruction", lambda m: got["instr"].append(m.data),
                             M.LATCHED_QOS)
    node.create_subscription(String, "planner/plan",
                             lambda m: got["plan"].append(json.loads(m.data)), M.LATCHED_QOS)
    node.create_subscription(String, "planner/status",
                             lambda m: got["status"].append(json.loads(m.data)), M.STATE_QOS)
    pub_state = node.create_publisher(String, "task/state", M.STATE_QOS)
    pub_instr = node.create_publisher(String, "planner/instruction", M.STATE_QOS)
    facts = {"now": before}
    node.create_timer(0.2, lambda: pub_state.publish(String(data=json.dumps(
        {"symbolic_state": {"facts": facts["now"]}}))))

    def state():
        return got["status"][-1]["state"] if got["status"] else None

    try:
        assert spin_until(node, lambda: state() == "idle", timeout=120), "planner never came up"
        # 1. plan -> the step's instruction reaches the policy -> effects observed -> done
        pub_instr.publish(String(data="open the drawer"))
        assert spin_until(node, lambda: got["instr"], timeout=60), got["status"][-1:]
        assert got["plan"][-1]["status"] == "ok" and "open_drawer" in got["plan"][-1]["text"]
        assert got["instr"][-1] == "open the drawer"
        assert spin_until(node, lambda: state() == "executing", timeout=5)
        facts["now"] = after
        assert spin_until(node, lambda: state() == "succeeded", timeout=30), got["status"][-1]
        assert got["status"][-1]["done"] == ["open_drawer()"]
        # 2. nothing happens in the scene: timeout -> re-plan -> timeout -> failed
        facts["now"] = before
        spin_until(node, lambda: False, timeout=1.0)
        pub_instr.publish(String(data="open the drawer"))
        assert spin_until(node, lambda: state() == "failed", timeout=60), got["status"][-1]
        last = got["status"][-1]
        assert last["replans"] == 1 and "failed after 1 re-plans" in last["reason"]
        assert len(got["plan"]) >= 3  # first plan, the re-plan of the second instruction
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        out = stop(procs)[0]
    assert "plan:" in out
