"""Serving policies to non-ROS clients: an openpi-protocol websocket server (``robolearn-serve``)."""
