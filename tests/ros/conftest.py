"""ROS 2 tests: real rclpy processes on loopback, one private domain per test session."""

import os
import sys
from pathlib import Path

import pytest

from robolearn.ros_nodes.graph import node_environment

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed (pip install -e '.[ros]')")


@pytest.fixture(scope="session")
def ros_env(tmp_path_factory):
    """Environment for ROS subprocesses: ament prefix = this venv, localhost discovery."""
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", str(Path(sys.executable).parents[1]))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_HOME"] = str(tmp_path_factory.mktemp("ros_home"))
    env["ROS_DOMAIN_ID"] = os.environ["ROS_DOMAIN_ID"]  # set per session in tests/conftest.py
    env.update(node_environment(env))  # the graph's DDS profile, as launch files set it
    os.environ.update({k: env[k] for k in ("AMENT_PREFIX_PATH", "ROS_HOME",
                                           "FASTRTPS_DEFAULT_PROFILES_FILE")})
    return env
