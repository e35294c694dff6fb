"""``nerf_node``: feeds a robot's posed camera stream to the online NeRF bridge.

Subscribes (relative, remappable): ``<camera>/image_raw`` (sensor_msgs/Image),
``<camera>/camera_info`` (sensor_msgs/CameraInfo) and, with ``pose_source: topic``,
``<camera>/pose`` (geometry_msgs/PoseStamped, camera optical frame in the world: z forward,
y down - what ``sim_bridge_node`` publishes, or an odometry/SLAM pose).
``pose_source: joints`` computes the wrist camera's pose by forward kinematics of ``robot``
(its MuJoCo model and camera mount) from ``joint_states`` (sensor_msgs/JointState).
``pose_source: fixed`` uses ``fixed_pose`` [x, y, z, qw, qx, qy, qz] (a calibrated camera).

Images are paired with poses by stamp within ``slop`` seconds (when nothing pairs, the node
warns and says why: the classic "training never starts"), throttled to ``frame_hz``,
resized to the bridge's ``image_width`` x ``image_height`` (intrinsics scaled with them)
and streamed to a NeRF bridge worker process (:mod:`robolearn.nerf.worker`, run by
``nerf_python``: nerfstudio lives in its own environment) that trains between frames.

Publishes ``nerf/render/rgb`` (rgb8) and ``nerf/render/depth`` (32FC1, metres) rendered
from the latest camera pose every ``1 / render_hz`` s with the latest weights, and
``/diagnostics`` (frames in / accepted / rejected / unsynced, training step, loss, held-out
PSNR).  Service ``~/save`` (std_srvs/Trigger) writes a checkpoint into ``out_dir``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from robolearn.ros_nodes import messages as M


def quat_wxyz_to_mat(q) -> np.ndarray:
    w, x, y, z = (float(v) for v in q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"pose quaternion {q} is not a rotation")
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def optical_pose_to_c2w(pos, quat_wxyz) -> np.ndarray:
    """A ROS optical-frame camera pose -> OpenGL camera-to-world 4x4 (the bridge's convention)."""
    from robolearn.nerf.frames import opencv_to_opengl

    c2w = np.eye(4)
    c2w[:3, :3] = quat_wxyz_to_mat(quat_wxyz)
    c2w[:3, 3] = [float(v) for v in pos]
    return opencv_to_opengl(c2w)


def wrist_fk_source(robot: str):
    """(WristCameraFK pose source, arm joint names) from the robot's MuJoCo model: the wrist
    camera's OpenGL camera-to-world from joint positions (its mount from the model)."""
    from robolearn.envs.sim import TabletopSim
    from robolearn.nerf.sim_source import MujocoFK
    from robolearn.nerf.sync import WristCameraFK

    sim = TabletopSim(robot=robot)
    fk = MujocoFK(sim.model, sim.arm_qadr, sim.robot.wrist_camera)
    return WristCameraFK(fk, fk.t_body_cam), list(sim.robot.arm_joints)


def resize_frame(rgb: np.ndarray, k: list[float], width: int, height: int):
    """Resize (H, W, 3) to (height, width) and scale pinhole intrinsics [fx, fy, cx, cy]."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb, list(k)
    from PIL import Image as PILImage

    out = np.asarray(PILImage.fromarray(rgb).resize((width, height), PILImage.BILINEAR))
    sx, sy = width / w, height / h
    fx, fy, cx, cy = k
    # pixel centres: (c + 0.5) * s - 0.5
    return out, [fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5]


class NerfNode(Node):
    def __init__(self):
        super().__init__("nerf")
        p = self.declare_parameter
        self.camera = p("camera", "wrist").value
        self.pose_source = p("pose_source", "topic").value
        self.fixed_pose = list(p("fixed_pose", [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).value)
        self.slop = float(p("slop", 0.05).value)
        self.frame_hz = float(p("frame_hz", 2.0).value)
        self.render_hz = float(p("render_hz", 0.2).value)
        self.nerf_python = p("nerf_python", "").value
        self.out_dir = Path(p("out_dir", "runs/ros/nerf").value)
        self.width = int(p("image_width", 64).value)
        self.height = int(p("image_height", 64).value)
        self.bridge_params = {
            "image_width": self.width, "image_height": self.height,
            "scene_center": list(p("scene_center", [0.45, 0.0, 0.1]).value),
            "scene_scale": float(p("scene_scale", 1.0).value),
            "memory_budget_mb": float(p("memory_budget_mb", 64.0).value),
            "max_frames": int(p("max_frames", 512).value),
            "sampling": p("sampling", "recency").value,
            "rays_per_batch": int(p("rays_per_batch", 512).value),
            "eval_every_k": int(p("eval_every_k", 8).value),
            "device": p("device", "auto").value,
        }
        self.eval_every_steps = int(p("eval_every_steps", 100).value)
        self.robot = p("robot", "panda").value
        if self.pose_source not in ("topic", "fixed", "joints"):
            raise ValueError(f"pose_source must be topic, joints or fixed, got "
                             f"{self.pose_source!r}")

        from robolearn.nerf.sync import FixedCameraPose, PoseStream, TimeSync

        if self.pose_source == "fixed":
            fp = self.fixed_pose
            source = FixedCameraPose(optical_pose_to_c2w(fp[:3], fp[3:7]))
        elif self.pose_source == "joints":
            source, self.arm_joints = wrist_fk_source(self.robot)
        else:
            source = PoseStream()
        self.poses = source
        self.sync = TimeSync(source, self.slop)
        self.client = None
        self.worker_error = ""  # the worker is gone or failed: an ERROR until restarted
        self.worker_busy = ""  # the last stats request timed out: a WARN until one answers
        self.counts = {"images": 0, "sent": 0, "unsynced": 0, "no_camera_info": 0,
                       "bad_images": 0, "throttled": 0}
        self.info: CameraInfo | None = None
        self.pending: deque = deque(maxlen=8)  # (receipt time, stamp, Image, CameraInfo)
        self.max_wait = float(p("max_wait", 1.0).value)
        self.last_sent_t = -math.inf
        self.last_pose: tuple[np.ndarray, list[float]] | None = None
        self.stats: dict = {}
        self._stop = threading.Event()

        cam = self.camera
        self.create_subscription(Image, f"{cam}/image_raw", self._on_image, M.IMAGE_QOS)
        self.create_subscription(CameraInfo, f"{cam}/camera_info", self._on_info, M.STATE_QOS)
        if self.pose_source == "topic":
            self.create_subscription(PoseStamped, f"{cam}/pose", self._on_pose, M.STATE_QOS)
        elif self.pose_source == "joints":
            self.create_subscription(JointState, "joint_states", self._on_joints, M.JOINT_QOS)
        self.pub_rgb = self.create_publisher(Image, "nerf/render/rgb", 1)
        self.pub_depth = self.create_publisher(Image, "nerf/render/depth", 1)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(Trigger, "~/save", self._on_save)
        threading.Thread(target=self._start_worker, name="nerf_worker_start", daemon=True).start()
        threading.Thread(target=self._monitor, name="nerf_monitor", daemon=True).start()
        self.get_logger().info(f"nerf: camera {cam!r}, poses from {self.pose_source}, "
                               f"{self.width}x{self.height}, {self.frame_hz:g} frames/s")

    # ------------------------------------------------------------------ worker
    def _start_worker(self) -> None:
        from robolearn.nerf.client import NerfWorkerClient, NerfWorkerError
        from robolearn.nerf.config import NerfBridgeConfig

        try:
            self.client = NerfWorkerClient(
                NerfBridgeConfig(**self.bridge_params), python=self.nerf_python,
                work_dir=str(self.out_dir / "work"), eval_every_steps=self.eval_every_steps)
            self.get_logger().info(f"NeRF worker ready on {self.client.device} "
                                   f"({self.client.python})")
        except (NerfWorkerError, OSError) as e:
            self.worker_error = str(e)
            self.get_logger().error(f"NeRF worker failed: {e}")

    # ------------------------------------------------------------------ inputs
    def _on_info(self, msg: CameraInfo) -> None:
        self.info = msg

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        try:
            c2w = optical_pose_to_c2w((p.x, p.y, p.z), (o.w, o.x, o.y, o.z))
        except ValueError as e:
            self.get_logger().warning(f"dropping pose: {e}", throttle_duration_sec=5.0)
            return
        self.poses.push(M.to_seconds(msg.header.stamp), c2w)
        self._drain()

    def _on_joints(self, msg: JointState) -> None:
        pos = dict(zip(msg.name, msg.position))
        missing = [n for n in self.arm_joints if n not in pos]
        if missing:
            self.get_logger().warning(f"joint_states lacks {missing} of {self.robot}",
                                      throttle_duration_sec=5.0)
            return
        self.poses.push_joints(M.to_seconds(msg.header.stamp),
                               np.array([pos[n] for n in self.arm_joints]))
        self._drain()

    def _on_image(self, msg: Image) -> None:
        self.counts["images"] += 1
        t = M.to_seconds(msg.header.stamp)
        if self.info is None:
            self.counts["no_camera_info"] += 1
            self.get_logger().warning(f"no CameraInfo on {self.camera}/camera_info yet: "
                                      "frames need intrinsics", throttle_duration_sec=5.0)
            return
        # the pose of this stamp may still be on its way (images and poses travel on
        # different topics): keep the image until a pose matches or none can any more
        if len(self.pending) == self.pending.maxlen:
            self._give_up(self.pending.popleft())
        self.pending.append((time.monotonic(), t, msg, self.info))
        self._drain()

    def _drain(self) -> None:
        while self.pending:
            received, t, msg, info = self.pending[0]
            c2w, final = self.sync.try_match(t)
            if not final and time.monotonic() - received < self.max_wait:
                return  # the oldest waits for its pose; newer ones wait behind it
            item = self.pending.popleft()
            if c2w is not None:
                self._send(t, msg, info, c2w)
            elif final:  # try_match has counted the miss
                self._unsynced()
            else:
                self._give_up(item)

    def _give_up(self, item) -> None:
        """Settle an image that waited ``max_wait`` or was pushed out of the queue: a last
        lookup (which counts a miss) sends it if its pose came after all."""
        _, t, msg, info = item
        c2w = self.sync.match(t)
        if c2w is None:
            self._unsynced()
        else:
            self._send(t, msg, info, c2w)

    def _unsynced(self) -> None:
        self.counts["unsynced"] += 1
        if self.sync.warned:
            self.get_logger().warning(
                f"{self.sync.misses_in_a_row} images without a pose within slop={self.slop} s "
                f"(nearest {self.sync.last_miss_dt:.3f} s away): training cannot start; check "
                "that both streams share a clock or raise slop", throttle_duration_sec=5.0)

    def _send(self, t: float, msg: Image, info: CameraInfo, c2w: np.ndarray) -> None:
        if self.frame_hz > 0 and t - self.last_sent_t < 1.0 / self.frame_hz:
            self.counts["throttled"] += 1  # the one rate limit (posed images can come in bursts)
            return
        try:
            rgb = M.image_array(msg)
        except ValueError as e:
            self.counts["bad_images"] += 1
            self.get_logger().warning(f"dropping image: {e}", throttle_duration_sec=5.0)
            return
        k = info.k
        rgb, kk = resize_frame(rgb, [k[0], k[4], k[2], k[5]], self.width, self.height)
        intr = kk + [self.width, self.height]
        self.last_pose = (c2w, intr)
        if self.client is None:
            return  # the worker is still starting (or failed; diagnostics say which)
        try:
            self.client.send_frame(rgb, c2w, intr, t)
        except Exception as e:  # noqa: BLE001 - a dead worker is reported, not raised
            self.worker_error = str(e)
            return
        self.last_sent_t = t
        self.counts["sent"] += 1

    # ------------------------------------------------------------------ outputs
    def _monitor(self) -> None:
        from robolearn.nerf.client import NerfWorkerTimeout

        next_render = time.monotonic() + (1.0 / self.render_hz if self.render_hz > 0 else 0)
        while not self._stop.wait(1.0):
            if not self.context.ok():
                return  # shutting down: publishers are gone (SIGINT before destroy_node)
            c = self.client
            if c is not None and c.alive:
                try:
                    self.stats = c.request("stats", timeout=60.0)
                    self.worker_busy = ""
                except NerfWorkerTimeout as e:  # alive but slow: say so, do not give up
                    self.worker_busy = str(e)
                except Exception as e:  # noqa: BLE001
                    self.worker_error = str(e)
                if (self.render_hz > 0 and self.last_pose is not None
                        and self.stats.get("step", 0) > 0 and time.monotonic() >= next_render):
                    next_render = time.monotonic() + 1.0 / self.render_hz
                    self._render(*self.last_pose)
            elif c is not None and not self.worker_error:
                self.worker_error = c.dead_reason or "the NeRF worker exited"
            self._publish_diagnostics()

    def _render(self, c2w: np.ndarray, intr: list) -> None:
        try:
            r = self.client.request("render", c2w=c2w, intrinsics=intr, timeout=120.0)
        except Exception as e:  # noqa: BLE001
            if self.context.ok():  # a worker closed at shutdown is no render failure
                self.get_logger().warning(f"render failed: {e}", throttle_duration_sec=10.0)
            return
        if not self.context.ok():
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        self.pub_rgb.publish(M.image_msg(r["rgb"], now, "nerf_render"))
        d = np.ascontiguousarray(r["depth"], np.float32)
        msg = Image()
        msg.header.stamp, msg.header.frame_id = M.stamp(now), "nerf_render"
        msg.height, msg.width = d.shape
        msg.encoding, msg.is_bigendian, msg.step = "32FC1", 0, d.shape[1] * 4
        msg.data = d.tobytes()
        self.pub_depth.publish(msg)

    def _publish_diagnostics(self) -> None:
        s = self.stats
        level, text = DiagnosticStatus.OK, "training"
        if self.worker_error:
            level, text = DiagnosticStatus.ERROR, f"worker: {self.worker_error}"
        elif self.worker_busy:
            level, text = DiagnosticStatus.WARN, f"worker busy: {self.worker_busy}"
        elif self.sync.warned and self.sync.n_matched == 0:
            level, text = DiagnosticStatus.WARN, (
                f"no image has a pose within slop={self.slop} s: training cannot start")
        elif self.client is None:
            level, text = DiagnosticStatus.WARN, "starting the NeRF worker"
        elif not s.get("step"):
            level, text = DiagnosticStatus.WARN, "waiting for frames"
        share = s.get("data_seconds", 0) / max(s.get("train_seconds", 0), 1e-9)
        values = {**{k: str(v) for k, v in self.counts.items()},
                  "accepted": str(s.get("accepted", 0)), "rejected": str(s.get("rejected", 0)),
                  "last_rejection": str(s.get("last_rejection", "")),
                  "train_frames": str(s.get("train_frames", 0)), "step": str(s.get("step", 0)),
                  "loss": f"{sum((s.get('loss') or {}).values()):.5f}",
                  "eval_psnr": f"{(s.get('eval') or {}).get('psnr', float('nan')):.2f}",
                  "data_share": f"{share:.3f}"}
        st = DiagnosticStatus(level=level, name=f"{self.get_name()}: nerf", message=text,
                              hardware_id=self.camera,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)

    def _on_save(self, request, response):
        if self.client is None or not self.client.alive:
            response.success = False
            response.message = self.worker_error or "the NeRF worker is not running yet"
            return response
        path = self.out_dir / "checkpoint"
        try:
            r = self.client.request("save", path=str(path), timeout=300.0)
            response.success, response.message = True, f"saved step {r['step']} to {r['path']}"
        except Exception as e:  # noqa: BLE001
            response.success, response.message = False, str(e)
        return response

    def destroy_node(self):
        self._stop.set()
        if self.client is not None:
            self.client.close(timeout=10.0)
        return super().destroy_node()


def main(args=None) -> None:
    from robolearn.ros_nodes.launching import spin

    spin(NerfNode, args)


if __name__ == "__main__":
    main()
