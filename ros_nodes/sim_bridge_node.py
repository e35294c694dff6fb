"""``sim_bridge_node``: a robolearn MuJoCo env that behaves like a robot on ROS 2.

Publishes (relative names, remappable):
  ``joint_states``            sensor_msgs/JointState  arm joints + ``gripper`` (0 open..1 closed), every control step
  ``ee_pose``                 geometry_msgs/PoseStamped  end-effector pose in ``world``
  ``<cam>/image_raw``         sensor_msgs/Image rgb8 (best effort) at ``camera_hz``
  ``<cam>/camera_info``       sensor_msgs/CameraInfo  pinhole intrinsics
  ``<cam>/pose``              geometry_msgs/PoseStamped  camera pose in ``world`` (optical frame: z forward, y down)
  ``task/instruction``        std_msgs/String (latched)   the episode's instruction
  ``task/state``              std_msgs/String  JSON: success, symbolic scene state, sim time
  ``/clock``                  rosgraph_msgs/Clock  sim time (nodes use ``use_sim_time``)
Subscribes:
  ``joint_trajectory``        trajectory_msgs/JointTrajectory  followed point by point (time_from_start)
  ``joint_position_command``  std_msgs/Float64MultiArray  [q_1..q_n, gripper] joint targets
Services:
  ``~/reset``  std_srvs/Trigger   new episode (next seed; applies a changed ``task`` parameter)
  ``~/pause``  std_srvs/SetBool   freeze/unfreeze physics
The sim clamps targets to the joint limits and ramps the servo setpoints at the arm's
rated joint speeds, like a real joint trajectory controller.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from robolearn.ros_nodes import messages as M  # noqa: E402

GRIPPER = "gripper"


class SimBridgeNode(Node):
    def __init__(self):
        super().__init__("sim_bridge")
        p = self.declare_parameter
        self.task = p("task", "PickPlace").value
        self.robot = p("robot", "panda").value
        self.seed = int(p("seed", 0).value)
        self.cameras = list(p("cameras", ["front", "wrist"]).value)
        self.image_size = int(p("image_size", 96).value)
        self.control_hz = float(p("control_hz", 50.0).value)
        self.camera_hz = float(p("camera_hz", 10.0).value)
        self.state_hz = float(p("state_hz", 2.0).value)
        self.publish_clock = bool(p("publish_clock", True).value)
        if self.camera_hz > self.control_hz or self.control_hz <= 0:
            raise ValueError(f"need 0 < camera_hz <= control_hz (got {self.camera_hz}, "
                             f"{self.control_hz})")
        self.env = None
        self.t = 0.0
        self.k = 0
        self.paused = False
        self.trajectory = None  # (names, points, start_time)
        self._make_env()

        self.pub_js = self.create_publisher(JointState, "joint_states", M.JOINT_QOS)
        self.pub_ee = self.create_publisher(PoseStamped, "ee_pose", M.JOINT_QOS)
        self.pub_cam = {c: (self.create_publisher(Image, f"{c}/image_raw", M.IMAGE_QOS),
                            self.create_publisher(CameraInfo, f"{c}/camera_info", M.STATE_QOS),
                            self.create_publisher(PoseStamped, f"{c}/pose", M.STATE_QOS))
                        for c in self.cameras}
        self.pub_instr = self.create_publisher(String, "task/instruction", M.LATCHED_QOS)
        self.pub_state = self.create_publisher(String, "task/state", M.STATE_QOS)
        self.pub_clock = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        self.create_subscription(JointTrajectory, "joint_trajectory", self._on_trajectory,
                                 M.STATE_QOS)
        self.create_subscription(Float64MultiArray, "joint_position_command", self._on_command,
                                 M.STATE_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/pause", self._on_pause)
        self._publish_instruction()
        self.timer = self.create_timer(1.0 / self.control_hz, self._tick)
        self.get_logger().info(f"sim bridge: task {self.task}, robot {self.robot}, cameras "
                               f"{self.cameras} at {self.camera_hz} Hz, control {self.control_hz} Hz")

    # ------------------------------------------------------------------ env
    def _make_env(self) -> None:
        from robolearn.envs.config import CameraConfig, EnvConfig
        from robolearn.envs.tabletop_env import TabletopEnv

        if self.env is not None:
            self.env.close()
        # images are rendered here at camera_hz, not inside every env step
        cfg = EnvConfig(robot=self.robot, control_hz=self.control_hz,
                        cameras=CameraConfig(names=[], resolution=self.image_size))
        self.env = TabletopEnv(self.task, config=cfg)
        self.env.reset(seed=self.seed)
        self.sim = self.env.sim
        self.joint_names = list(self.sim.robot.arm_joints) + [GRIPPER]
        self.target = self.sim.qpos_arm.copy()
        self.grip = 0.0
        self.trajectory = None

    # ------------------------------------------------------------------ commands
    def _set_target(self, names, values) -> bool:
        values = np.asarray(values, float)
        if not np.all(np.isfinite(values)):
            self.get_logger().error("command contains NaN/inf: ignored, holding the last target")
            return False
        arm = list(self.sim.robot.arm_joints)
        target = self.target.copy()
        for n, v in zip(names, values):
            if n == GRIPPER:
                self.grip = float(np.clip(v, 0.0, 1.0))
            elif n in arm:
                target[arm.index(n)] = v
            else:
                self.get_logger().warning(f"unknown joint {n!r} in command (joints: "
                                       f"{self.joint_names})", throttle_duration_sec=5.0)
                return False
        self.target = target
        return True

    def _on_command(self, msg: Float64MultiArray) -> None:
        n = len(self.sim.robot.arm_joints)
        if len(msg.data) not in (n, n + 1):
            self.get_logger().warning(f"joint_position_command needs {n} or {n + 1} values "
                                   f"(arm [+ gripper]), got {len(msg.data)}",
                                   throttle_duration_sec=5.0)
            return
        self.trajectory = None
        self._set_target(self.joint_names[: len(msg.data)], msg.data)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:
            return
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        self.trajectory = (list(msg.joint_names), list(msg.points), times, self.t)

    def _follow_trajectory(self) -> None:
        names, points, times, t0 = self.trajectory
        elapsed = self.t - t0
        i = next((j for j, tt in enumerate(times) if tt >= elapsed), len(points) - 1)
        self._set_target(names, points[i].positions)
        if elapsed > times[-1]:
            self.trajectory = None

    # ------------------------------------------------------------------ services
    def _on_reset(self, request, response):
        new_task = self.get_parameter("task").value
        self.seed += 1
        if new_task != self.task:
            self.task = new_task
            try:
                self._make_env()
            except (KeyError, ValueError) as e:
                response.success, response.message = False, f"cannot switch task: {e}"
                return response
        else:
            self._restart_episode()
        self._publish_instruction()
        response.success = True
        response.message = f"task {self.task}, seed {self.seed}: {self.env.instruction}"
        return response

    def _restart_episode(self) -> None:
        """The same task from seed ``self.seed``; the arm holds where the new episode starts."""
        self.env.reset(seed=self.seed)
        self.target, self.grip, self.trajectory = self.sim.qpos_arm.copy(), 0.0, None

    def _on_pause(self, request, response):
        self.paused = bool(request.data)
        response.success, response.message = True, "paused" if self.paused else "running"
        return response

    # ------------------------------------------------------------------ loop
    def _publish_instruction(self) -> None:
        self.pub_instr.publish(String(data=self.env.instruction))

    def _tick(self) -> None:
        if self.paused:
            return
        if self.trajectory is not None:
            self._follow_trajectory()
        self.sim.step(self.target, self.grip)
        unstable = self.sim.instability()
        if unstable:  # MuJoCo reset the scene under us: start the next episode cleanly
            self.get_logger().error(f"the simulation went unstable ({unstable}); starting the "
                                    f"next episode (seed {self.seed + 1})")
            self.seed += 1
            self._restart_episode()
            self._publish_instruction()
        self.t += 1.0 / self.control_hz
        self.k += 1
        t = self.t
        if self.pub_clock is not None:
            msg = Clock()
            msg.clock = M.stamp(t)
            self.pub_clock.publish(msg)
        s = self.sim
        self.pub_js.publish(M.joint_state_msg(
            self.joint_names, np.r_[s.qpos_arm, s.gripper_closure()],
            np.r_[s.qvel_arm, 0.0], t))
        ee = s.ee_pose()
        self.pub_ee.publish(M.pose_msg(ee[:3], ee[3:], t))
        every = max(1, int(round(self.control_hz / self.camera_hz)))
        if self.k % every == 0:
            self._publish_cameras(t)
        if self.k % max(1, int(round(self.control_hz / self.state_hz))) == 0:
            success = bool(self.env.task.success(s, self.env.task_args))
            self.pub_state.publish(String(data=json.dumps(
                {"success": success, "t": t, "task": self.task,
                 "symbolic_state": s.symbolic_state()}, default=str)))

    def _publish_cameras(self, t: float) -> None:
        s = self.sim
        for cam, (pub_img, pub_info, pub_pose) in self.pub_cam.items():
            rgb = s.render(cam, self.image_size)
            frame = f"{cam}_optical"
            pub_img.publish(M.image_msg(rgb, t, frame))
            cid = s.camera_id(cam)
            pub_info.publish(M.camera_info_msg(self.image_size, self.image_size,
                                               float(s.model.cam_fovy[cid]), t, frame))
            # MuJoCo cameras look along -z with y up; the ROS optical frame is z fwd, y down
            rot = s.data.cam_xmat[cid].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
            pub_pose.publish(M.pose_msg(s.data.cam_xpos[cid], M.mat_to_quat_wxyz(rot), t))

    def destroy_node(self):
        if self.env is not None:
            self.env.close()
        super().destroy_node()


def main(args=None) -> None:
    from robolearn.ros_nodes.launching import spin

    spin(SimBridgeNode, args)


if __name__ == "__main__":
    main()
