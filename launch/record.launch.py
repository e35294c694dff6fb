"""Record a robot's topics into a store: `ros2 launch robolearn record.launch.py store:=demos.zarr`.

A thin adapter over robolearn.ros_nodes.graph (remap joint_states/command with arguments).
"""

from robolearn.ros_nodes.launching import launch_description

GRAPH = "record"


def generate_launch_description():
    return launch_description(GRAPH)
