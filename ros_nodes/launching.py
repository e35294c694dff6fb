"""What every launch file does, written once: turn a graph description into launch actions.

Imports ROS 2's ``launch``/``launch_ros`` (present on a ROS install, not on PyPI), so only
launch files import this module.
"""

from __future__ import annotations

from robolearn.ros_nodes.graph import LAUNCH_ARGS, graph, node_environment, share_dir


def launch_description(graph_name: str):
    """A LaunchDescription that declares the graph's arguments and starts its nodes."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        args = {k: LaunchConfiguration(k).perform(context) for k in LAUNCH_ARGS[graph_name]}
        extra_env = node_environment()
        return [Node(package="robolearn", executable=s.executable, name=s.name,
                     namespace=s.namespace or None, output="screen",
                     additional_env=extra_env or None,
                     parameters=[str(share_dir() / f) for f in s.params_files] + [s.parameters],
                     remappings=s.remappings)
                for s in graph(graph_name, **args)]

    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=d, description=h)
         for k, (d, h) in LAUNCH_ARGS[graph_name].items()]
        + [OpaqueFunction(function=nodes)])


def spin(node_cls, args=None) -> None:
    """Run one node until Ctrl-C / shutdown (the ``main`` of every robolearn node)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = node_cls()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
