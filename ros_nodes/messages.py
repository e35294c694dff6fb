"""numpy <-> ROS message conversions and the QoS profiles the nodes share.

No cv_bridge here (not installable from a registry): images are converted with numpy.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState

#: camera images: best effort, shallow (a late frame is worth nothing; RELIABLE 1 MB
#: images can make publish() raise under load, DESIGN.md section 4)
IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                       history=HistoryPolicy.KEEP_LAST, depth=2)
#: joint states and commands: reliable, a few deep
STATE_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                       history=HistoryPolicy.KEEP_LAST, depth=10)
#: high-rate robot state (joint states, EE pose at 100-500 Hz), both ends: reliable with a
#: deep queue, so a busy executor (inference holding the GIL) catches up on a backlog of up
#: to 1000 samples (5 s at 200 Hz) instead of having them overwritten
JOINT_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                       history=HistoryPolicy.KEEP_LAST, depth=1000)
#: latched facts (task instruction): late joiners get the last value
LATCHED_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         history=HistoryPolicy.KEEP_LAST, depth=1)

ENCODINGS = {"rgb8": (3, False), "bgr8": (3, True), "rgba8": (4, False), "bgra8": (4, True),
             "mono8": (1, False)}


def stamp(t: float) -> Time:
    """Seconds -> Time. Rounds the total to whole nanoseconds first, so 2.9999999999
    becomes 3 s + 0 ns (rounding only the fraction wrapped it to 2 s + 0 ns)."""
    sec, nanosec = divmod(int(round(t * 1e9)), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def to_seconds(msg_stamp) -> float:
    return msg_stamp.sec + msg_stamp.nanosec * 1e-9


def image_msg(rgb: np.ndarray, t: float, frame_id: str) -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image rgb8."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp(t), frame_id
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, rgb.shape[1] * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def image_problem(msg: Image) -> str | None:
    """Why ``image_array`` would refuse this message (None if it is fine); cheap, no copy."""
    enc = msg.encoding.lower()
    if enc not in ENCODINGS:
        return (f"image encoding {msg.encoding!r} unsupported; publish one of "
                f"{sorted(ENCODINGS)}")
    if len(msg.data) != msg.height * msg.step or msg.step < msg.width * ENCODINGS[enc][0]:
        return (f"image data has {len(msg.data)} bytes with step {msg.step}, expected "
                f"height*step = {msg.height * msg.step} and step >= width*channels")
    return None


def image_array(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> uint8 (H, W, 3) RGB."""
    problem = image_problem(msg)
    if problem:
        raise ValueError(problem)
    ch, bgr = ENCODINGS[msg.encoding.lower()]
    try:  # rclpy gives array.array (zero-copy view); hand-built messages may hold a list
        buf = np.frombuffer(msg.data, np.uint8)
    except TypeError:
        buf = np.asarray(msg.data, np.uint8)
    img = buf.reshape(msg.height, msg.step)[:, : msg.width * ch].reshape(msg.height, msg.width, ch)
    if ch == 1:
        return np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    return np.ascontiguousarray(img[..., ::-1] if bgr else img)


def camera_info_msg(width: int, height: int, fovy_deg: float, t: float, frame_id: str) -> CameraInfo:
    """Pinhole intrinsics of a MuJoCo camera (vertical field of view, square pixels)."""
    fy = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
    fx, cx, cy = fy, (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo()
    msg.header.stamp, msg.header.frame_id = stamp(t), frame_id
    msg.width, msg.height, msg.distortion_model = width, height, "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def pose_msg(pos, quat_wxyz, t: float, frame_id: str = "world") -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp(t), frame_id
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pos)
    q.w, q.x, q.y, q.z = (float(v) for v in quat_wxyz)
    return msg


def joint_state_msg(names, pos, vel, t: float) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp(t)
    msg.name = list(names)
    msg.position = [float(v) for v in pos]
    msg.velocity = [float(v) for v in vel]
    return msg


def mat_to_quat_wxyz(m: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z)."""
    m = np.asarray(m, float).reshape(3, 3)
    tr = np.trace(m)
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k]) * 2
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = np.array(q)
    return q / np.linalg.norm(q)
