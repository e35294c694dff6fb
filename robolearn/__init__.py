"""robolearn: a robot-learning stack (Zarr trajectory stores, MuJoCo sim, VLA policies,
skills and planning, a NeRF bridge) that ships as a ROS 2 package.

Importing ``robolearn`` is cheap: heavy dependencies (torch, mujoco, rclpy, nerfstudio,
transformers) are imported lazily by the submodules that need them.
"""

__version__ = "0.1.0"
