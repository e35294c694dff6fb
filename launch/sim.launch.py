"""The full stack on the MuJoCo sim: `ros2 launch robolearn sim.launch.py task:=PickPlace`.

A thin adapter: the nodes, their parameters and remappings come from
robolearn.ros_nodes.graph, the same description the tests start as processes.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robolearn.ros_nodes.graph import LAUNCH_ARGS, graph, share_dir

GRAPH = "sim"


def _nodes(context):
    args = {k: LaunchConfiguration(k).perform(context) for k in LAUNCH_ARGS[GRAPH]}
    return [Node(package="robolearn", executable=s.executable, name=s.name,
                 namespace=s.namespace or None, output="screen",
                 parameters=[str(share_dir() / f) for f in s.params_files] + [s.parameters],
                 remappings=s.remappings)
            for s in graph(GRAPH, **args)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h)
         for k, (d, h) in LAUNCH_ARGS[GRAPH].items()]
        + [OpaqueFunction(function=_nodes)])
