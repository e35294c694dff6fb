"""Robot-side execution of policies, free of ROS: safety limits and real-time chunking.

``policy_node`` wraps these; tests exercise them directly.
"""

from robolearn.control.chunking import RealTimeChunker
from robolearn.control.safety import JointLimits

__all__ = ["JointLimits", "RealTimeChunker"]
