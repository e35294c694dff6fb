"""The full stack on the MuJoCo sim: `ros2 launch robolearn sim.launch.py task:=PickPlace`.

A thin adapter: nodes, parameters and remappings come from robolearn.ros_nodes.graph,
the same description the tests start as processes.
"""

from robolearn.ros_nodes.launching import launch_description

GRAPH = "sim"


def generate_launch_description():
    return launch_description(GRAPH)
