"""The ROS 2 wheels work in this venv: two real processes talk over loopback DDS."""

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros

TALKER = r"""
import sys, time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("talker")
pub = node.create_publisher(String, "chatter", 10)
for i in range(200):
    pub.publish(String(data=f"hello {i}"))
    time.sleep(0.05)
"""


def test_pubsub_between_processes(ros_env):
    import rclpy
    from std_msgs.msg import String

    proc = subprocess.Popen([sys.executable, "-c", TALKER], env=ros_env)
    try:
        rclpy.init()
        node = rclpy.create_node("listener")
        got = []
        node.create_subscription(String, "chatter", lambda m: got.append(m.data), 10)
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert len(got) >= 5 and all(g.startswith("hello ") for g in got)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
        proc.kill()
        proc.wait()
