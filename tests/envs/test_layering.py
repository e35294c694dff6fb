"""envs/ sits between the library and the ROS nodes: it never imports rclpy or ros_nodes,
and registering the gym ids (``import robolearn.envs``) does not load mujoco."""

import ast
import subprocess
import sys
from pathlib import Path

ENVS = Path(__file__).resolve().parents[2] / "envs"


def test_envs_never_import_ros():
    for path in ENVS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for n in names:
                assert not n.startswith(("rclpy", "ros_nodes", "robolearn.ros_nodes")), \
                    f"{path.name} imports {n}"


def test_registration_and_config_schemas_are_light():
    code = ("import sys, robolearn.envs, robolearn.envs.config, robolearn.envs.tasks; "
            "import gymnasium as gym; assert 'robolearn/PickPlace-v0' in gym.registry; "
            "print(' '.join(m for m in ('mujoco', 'torch', 'rclpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
