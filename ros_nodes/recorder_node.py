"""``recorder_node``: records a robot's topics into a robolearn trajectory store.

Subscribes (relative, remappable): ``joint_states`` (sensor_msgs/JointState),
``joint_position_command`` (std_msgs/Float64MultiArray, the action), ``<cam>/image_raw``
(sensor_msgs/Image) per camera in ``cameras``, ``task/instruction`` (std_msgs/String).
Services: ``~/start`` and ``~/stop`` (std_srvs/Trigger). Publishes ``~/recording``
(std_msgs/Bool, latched).

Streams are aligned onto one ``rate`` Hz clock by :class:`robolearn.data.resample.Resampler`
(the same code as ``robolearn-data convert rosbag``): policy ``hold`` takes each stream's
latest sample at or before a tick if it is at most ``max_age`` old. Ticks missing a stream
are dropped and counted. An episode is appended atomically on ``~/stop``: a crash loses
at most the open episode, never what was already written.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger

from robolearn import keys as K
from robolearn.data.resample import Resampler
from robolearn.ros_nodes import messages as M


class RecorderNode(Node):
    def __init__(self):
        super().__init__("recorder")
        p = self.declare_parameter
        self.store_url = p("store", "runs/ros/recorded.zarr").value
        self.cameras = list(p("cameras", ["front", "wrist"]).value)
        self.rate = float(p("rate", 10.0).value)
        self.policy = p("policy", "hold").value
        self.max_age = float(p("max_age", 0.25).value)
        self.task = p("task", "teleop").value
        self.robot = p("robot", "unknown").value
        self.use_command = bool(p("record_command", True).value)
        self.instruction = p("instruction", "").value
        streams = ["state"] + [f"cam:{c}" for c in self.cameras] + (["action"] if self.use_command else [])
        self.resampler = Resampler(streams, streams, self.rate, self.policy, self.max_age)
        self.recording = False
        self.steps: list[dict] = []
        self.dropped = 0
        self.store = None

        self.create_subscription(JointState, "joint_states", self._on_joints, M.JOINT_QOS)
        if self.use_command:
            self.create_subscription(Float64MultiArray, "joint_position_command",
                                     self._on_command, M.STATE_QOS)
        for cam in self.cameras:
            self.create_subscription(Image, f"{cam}/image_raw",
                                     lambda m, c=cam: self._on_image(c, m), M.IMAGE_QOS)
        self.create_subscription(String, "task/instruction", self._on_instruction, M.LATCHED_QOS)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.pub_rec = self.create_publisher(Bool, "~/recording", M.LATCHED_QOS)
        self.pub_rec.publish(Bool(data=False))

    # ------------------------------------------------------------------ inputs
    def _push(self, stream: str, t: float, value) -> None:
        if not self.recording:
            return
        for tick, values in self.resampler.push(stream, t, value):
            if values is None:
                self.dropped += 1
            else:
                self.steps.append({"t": tick, **values, "language": self.instruction})

    def _on_joints(self, msg: JointState) -> None:
        self._push("state", M.to_seconds(msg.header.stamp), np.asarray(msg.position, np.float32))

    def _on_command(self, msg: Float64MultiArray) -> None:
        t = self.get_clock().now().nanoseconds * 1e-9  # the command has no header: receipt time
        self._push("action", t, np.asarray(msg.data, np.float32))

    def _on_image(self, cam: str, msg: Image) -> None:
        try:
            img = M.image_array(msg)
        except ValueError as e:
            self.get_logger().error(f"{cam}: {e}", throttle_duration_sec=5.0)
            return
        self._push(f"cam:{cam}", M.to_seconds(msg.header.stamp), img)

    def _on_instruction(self, msg: String) -> None:
        self.instruction = msg.data

    # ------------------------------------------------------------------ services
    def _on_start(self, request, response):
        if self.recording:
            response.success, response.message = False, "already recording; call ~/stop first"
            return response
        if self.store is None:
            try:
                self.store = _open_or_create(self.store_url)
            except Exception as e:  # noqa: BLE001 - report any store problem to the caller
                response.success, response.message = False, f"cannot open store: {e}"
                return response
        self.resampler.reset()
        self.steps, self.dropped, self.recording = [], 0, True
        self.pub_rec.publish(Bool(data=True))
        response.success, response.message = True, f"recording into {self.store_url}"
        return response

    def _on_stop(self, request, response):
        if not self.recording:
            response.success, response.message = False, "not recording"
            return response
        self.recording = False
        self.pub_rec.publish(Bool(data=False))
        for tick, values in self.resampler.flush():
            if values is not None:
                self.steps.append({"t": tick, **values, "language": self.instruction})
        try:
            index = self._write_episode()
        except Exception as e:  # noqa: BLE001 - the episode is lost, the store is intact
            response.success, response.message = False, f"episode not written: {e}"
            return response
        response.success = True
        response.message = (f"episode {index}: {len(self.steps)} steps at {self.rate} Hz, "
                            f"{self.dropped} ticks dropped")
        self.get_logger().info(response.message)
        return response

    def _write_episode(self) -> int:
        steps = self.steps
        n = len(steps)
        if n < 2:
            raise ValueError(f"only {n} aligned step(s): are all streams publishing "
                             f"(joint_states, {', '.join(self.cameras)} images"
                             + (", joint_position_command" if self.use_command else "") + ")?")
        state = np.stack([s["state"] for s in steps])
        action = np.stack([s["action"] for s in steps]) if self.use_command else \
            np.concatenate([state[1:], state[-1:]])
        ep = {K.OBS_STATE: state, K.ACTION: action, K.REWARD: np.zeros(n, np.float32),
              K.DONE: np.arange(n) == n - 1, K.LANGUAGE: [s["language"] for s in steps],
              K.SKILL: [""] * n}
        for cam in self.cameras:
            ep[K.image_key(cam)] = np.stack([s[f"cam:{cam}"] for s in steps])
        meta = {K.META_TASK: self.task, K.META_INSTRUCTION: steps[0]["language"],
                K.META_SUCCESS: True, K.META_ROBOT: self.robot, K.META_FPS: self.rate,
                K.META_ACTION_SPACE: "joint_pos", K.META_SOURCE: "ros:recorder_node",
                "t_start": float(steps[0]["t"]), "dropped_ticks": self.dropped}
        return self.store.append_episode(ep, meta)

    def destroy_node(self):
        if self.store is not None:
            self.store.close()
        super().destroy_node()


def _open_or_create(url: str):
    from pathlib import Path

    from robolearn.data.store import TrajectoryStore, is_remote

    if not is_remote(url) and not Path(url).exists():
        return TrajectoryStore.create(url)
    return TrajectoryStore.open(url, mode="a")


def main(args=None) -> None:
    from robolearn.ros_nodes.launching import spin

    spin(RecorderNode, args)


if __name__ == "__main__":
    main()
