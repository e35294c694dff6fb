"""rosbag2 (MCAP or sqlite3) -> robolearn store, through ``rosbags`` (no ROS install needed).

Streams of different rates are resampled onto one clock of ``rate`` Hz, with an explicit
alignment policy:

* ``hold`` (default): at tick ``t`` each stream contributes its latest message with
  timestamp <= t, if that message is at most ``max_age`` old - what a controller running
  at ``rate`` would have seen (causal);
* ``nearest``: the message closest to ``t`` within ``max_age`` on either side (looks
  ahead by ``max_age``).

A tick where a required stream has no valid message is dropped and counted. Episodes are
split where the bag goes silent for more than ``gap`` seconds, or by a marker topic
(``std_msgs/Bool``: true = recording; ``std_msgs/String``: "start"/"stop"). Messages are
processed in bag order and only the resampled steps of the open episode are kept, so
memory is bounded by one episode.

Supported messages: images ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) and
``sensor_msgs/CompressedImage``; state ``sensor_msgs/JointState`` (positions, in
``joint_names`` order); actions ``trajectory_msgs/JointTrajectory`` (first point),
``sensor_msgs/JointState`` or ``std_msgs/Float64MultiArray``; language ``std_msgs/String``.
Without an action topic the next step's joint positions are the action (reported).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from robolearn import keys as K
from robolearn.data.convert import ConvertReport, finish, resize_frames
from robolearn.data.errors import EpisodeValidationError
from robolearn.data.resample import Resampler

@dataclass
class RosbagOptions:
    """How a bag maps onto a store (see the module docstring)."""

    cameras: dict[str, str]
    """camera name -> image topic."""
    joint_states: str
    """sensor_msgs/JointState topic for observation.state."""
    action: str | None = None
    """Command topic (JointTrajectory / JointState / Float64MultiArray); None = next state."""
    rate: float = 10.0
    """Output rate in Hz."""
    policy: str = "hold"
    """Alignment policy: hold or nearest."""
    max_age: float = 0.25
    """Seconds a message stays valid for a tick (hold) or the tolerance (nearest)."""
    gap: float = 1.0
    """Seconds of silence that end an episode."""
    marker: str | None = None
    """Topic that starts/stops episodes (Bool or String start/stop); None = split by gaps."""
    language_topic: str | None = None
    """std_msgs/String topic with the current instruction (else ``instruction``)."""
    instruction: str = ""
    """Instruction for every episode when there is no language topic."""
    task: str = ""
    """Task name in the episode metadata (default: the bag's folder name)."""
    robot: str = "unknown"
    """Robot name in the episode metadata."""
    success: bool = True
    """Recorded demonstrations are successful unless said otherwise."""
    joint_names: list[str] = field(default_factory=list)
    """Joint order of state/actions (default: the first JointState's order)."""
    image_size: int | None = None
    """Resize frames to a square of this size (None = keep, must be constant)."""
    min_steps: int = 2
    """Episodes shorter than this are dropped (reported)."""


# ---------------------------------------------------------------------------- decoding
def _decode_image(msg, msgtype: str) -> np.ndarray:
    if msgtype.endswith("CompressedImage"):
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(bytes(msg.data))).convert("RGB"))
    enc = msg.encoding.lower()
    ch = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(enc)
    if ch is None:
        raise ValueError(f"image encoding {msg.encoding!r} is not supported (use rgb8/bgr8/"
                         f"rgba8/bgra8/mono8 or CompressedImage)")
    buf = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    img = buf[:, : msg.width * ch].reshape(msg.height, msg.width, ch)
    if enc.startswith("bgr"):
        img = img[..., [2, 1, 0]]
    elif ch == 1:
        img = np.repeat(img, 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


class _Joints:
    """Maps JointState names to a fixed order (set by config or the first message)."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)

    def positions(self, msg) -> np.ndarray:
        if not self.names:
            self.names = list(msg.name)
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in self.names if n not in index]
        if missing:
            raise ValueError(f"JointState lacks joints {missing}")
        pos = np.asarray(msg.position, np.float64)
        return pos[[index[n] for n in self.names]].astype(np.float32)


def _action_value(msg, msgtype: str, joints: _Joints) -> np.ndarray:
    if msgtype.endswith("JointTrajectory"):
        if not msg.points:
            raise ValueError("JointTrajectory without points")
        idx = {n: i for i, n in enumerate(msg.joint_names)}
        pos = np.asarray(msg.points[0].positions, np.float64)
        names = joints.names or list(msg.joint_names)
        return pos[[idx[n] for n in names]].astype(np.float32)
    if msgtype.endswith("JointState"):
        return joints.positions(msg)
    return np.asarray(msg.data, np.float32)  # Float64MultiArray


# ---------------------------------------------------------------------------- conversion
def convert_rosbag(src: str, dst: str, *, cameras: Mapping[str, str], joint_states: str,
                   progress: bool = True, storage_options=None, **kwargs) -> ConvertReport:
    """Convert one rosbag2 folder (or .mcap/.db3 file's folder) into a new store."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    from robolearn.data.store import TrajectoryStore

    opt = RosbagOptions(cameras=dict(cameras), joint_states=joint_states, **kwargs)
    path = Path(src)
    if path.is_file():
        path = path.parent
    if not (path / "metadata.yaml").exists():
        raise FileNotFoundError(f"{src} is not a rosbag2 folder (no metadata.yaml)")
    task = opt.task or path.name
    report = ConvertReport(source=str(src), store=str(dst))
    typestore = get_typestore(Stores.LATEST)
    joints = _Joints(opt.joint_names)

    topic_stream = {t: f"cam:{c}" for c, t in opt.cameras.items()}
    topic_stream[opt.joint_states] = "state"
    if opt.action:
        topic_stream[opt.action] = "action"
    if opt.language_topic:
        topic_stream[opt.language_topic] = "language"
    required = [s for s in topic_stream.values() if s != "language"]
    clock = Resampler(list(topic_stream.values()), required, opt.rate, opt.policy, opt.max_age)
    store = TrajectoryStore.create(dst, storage_options=storage_options)
    t0 = time.perf_counter()
    episode: list[dict] = []
    state = {"recording": opt.marker is None, "last_t": None, "dropped": 0}

    def close_episode():
        ticks = clock.flush()
        _add_ticks(ticks)
        clock.reset()
        if not episode:
            return
        _write_episode(store, episode, opt, task, report, joints)
        episode.clear()

    def _add_ticks(ticks):
        for tick, values in ticks:
            if values is None:
                state["dropped"] += 1
            elif state["recording"]:
                episode.append({"t": tick, **values})

    with Reader(path) as reader:
        have = {c.topic for c in reader.connections}
        wanted = set(topic_stream) | ({opt.marker} if opt.marker else set())
        missing = sorted(wanted - have)
        if missing:
            raise KeyError(f"topics {missing} are not in {src}; it has {sorted(have)}")
        unused = sorted(have - wanted)
        if unused:
            report.dropped_keys = [f"topic {t}" for t in unused]
        conns = [c for c in reader.connections if c.topic in wanted]
        total = sum(c.msgcount for c in conns)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=f"rosbag -> {Path(str(dst)).name}", unit="msg")
        for conn, stamp_ns, raw in reader.messages(connections=conns):
            if bar is not None:
                bar.update(1)
            t = stamp_ns * 1e-9
            msg = typestore.deserialize_cdr(raw, conn.msgtype)
            if opt.marker and conn.topic == opt.marker:
                on = bool(msg.data) if isinstance(msg.data, (bool, np.bool_)) else \
                    str(msg.data).strip().lower() in ("start", "true", "1", "record")
                if not on and state["recording"]:
                    close_episode()
                elif on and not state["recording"]:
                    clock.reset()  # ticks of the new episode start at its first message
                state["recording"] = on
                continue
            if state["last_t"] is not None and t - state["last_t"] > opt.gap:
                close_episode()
            state["last_t"] = t
            stream = topic_stream[conn.topic]
            try:
                if stream.startswith("cam:"):
                    value = resize_frames(_decode_image(msg, conn.msgtype)[None], opt.image_size)[0]
                elif stream == "state":
                    value = joints.positions(msg)
                elif stream == "action":
                    value = _action_value(msg, conn.msgtype, joints)
                else:
                    value = str(msg.data)
            except (ValueError, KeyError, IndexError) as e:
                report.notes.append(f"skipped a message on {conn.topic} at {t:.3f}s: {e}")
                continue
            _add_ticks(clock.push(stream, t, value))
        close_episode()
        if bar is not None:
            bar.close()
    store.close()
    report.dropped_steps = state["dropped"]
    if not opt.action:
        report.notes.append("no action topic: action[t] = joint positions at t+1 "
                            "(the last step repeats its own state)")
    report.notes.append(f"resampled to {opt.rate} Hz with policy '{opt.policy}' "
                        f"(max_age {opt.max_age}s); episodes split by "
                        + (f"marker {opt.marker}" if opt.marker else f"gaps > {opt.gap}s"))
    report.frames_per_s = report.steps / max(1e-9, time.perf_counter() - t0)
    return finish(report, storage_options)


def _write_episode(store, episode: list[dict], opt: RosbagOptions, task: str,
                   report: ConvertReport, joints: _Joints) -> None:
    n = len(episode)
    label = f"episode at t={episode[0]['t']:.2f}s ({n} steps)"
    if n < opt.min_steps:
        report.dropped_episodes.append(f"{label}: shorter than min_steps={opt.min_steps}")
        return
    state = np.stack([s["state"] for s in episode])
    if opt.action:
        action = np.stack([s["action"] for s in episode])
    else:
        action = np.concatenate([state[1:], state[-1:]])
    lang = [s.get("language", opt.instruction) for s in episode]
    steps = {K.OBS_STATE: state, K.ACTION: action, K.REWARD: np.zeros(n, np.float32),
             K.DONE: np.arange(n) == n - 1, K.LANGUAGE: lang, K.SKILL: [""] * n}
    for cam in opt.cameras:
        steps[K.image_key(cam)] = np.stack([s[f"cam:{cam}"] for s in episode])
    meta = {K.META_TASK: task, K.META_INSTRUCTION: lang[0] or opt.instruction,
            K.META_SUCCESS: opt.success, K.META_ROBOT: opt.robot, K.META_FPS: opt.rate,
            K.META_ACTION_SPACE: "joint_pos", K.META_SOURCE: f"rosbag:{report.source}",
            "t_start": float(episode[0]["t"]), "joint_names": list(joints.names)}
    try:
        store.append_episode(steps, meta)
    except EpisodeValidationError as e:
        report.dropped_episodes.append(f"{label}: {e}")
        return
    report.episodes += 1
    report.steps += n
