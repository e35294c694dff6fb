"""A real arm: `ros2 launch robolearn robot.launch.py checkpoint:=RUN robot:=panda`.

Starts policy_node (a lifecycle node: `ros2 lifecycle set /policy configure`, then
`activate`) and recorder_node against the arm driver's topics (remap with the launch
arguments). Nodes and parameters come from robolearn.ros_nodes.graph, like the tests.
"""

from robolearn.ros_nodes.launching import launch_description

GRAPH = "robot"


def generate_launch_description():
    return launch_description(GRAPH)
