"""ROS transport and control timing: a robot-like driver -> policy_node, as real processes.

A driver process publishes a camera (default 640x480 rgb8 at 30 Hz, best effort) and
joint states + EE pose (default 200 Hz, reliable), stamped with the system clock, the way
a robot driver does. ``policy_node`` (default flow_vla, one camera, random weights: the
timing does not depend on what it learned) runs at each control rate in turn. Printed per
rate, in one run:

- sustained image / joint rates received by the policy node, and joint-state drops
  (published - received, from the driver's count and the node's cumulative count read
  after the driver stopped) at the policy node and at a reliable probe subscriber;
- end-to-end latency, from the stamp of the observation a chunk was inferred from to the
  publication of that chunk's first command (p50 / p99), and its ratio to the same
  policy's inference called in-process on the same input (the ROS overhead);
- control-tick jitter |interval - 1/rate| (p50 / p99) and the achieved control rate.

    python benchmarks/bench_ros.py                              # 10, 30, 50 Hz, 20 s each
    python benchmarks/bench_ros.py --rates 10 --seconds 10 --policy bc
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_driver(args) -> None:
    """The robot: camera at --image-hz, joint states + EE pose at --joint-hz."""
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import Image, JointState

    from robolearn.envs.robots import get_robot
    from robolearn.ros_nodes import messages as M

    rclpy.init()
    node = rclpy.create_node("bench_driver", namespace=args.ns)
    pub_js = node.create_publisher(JointState, "joint_states", M.JOINT_QOS)
    pub_ee = node.create_publisher(PoseStamped, "ee_pose", M.JOINT_QOS)
    pub_img = node.create_publisher(Image, "front/image_raw", M.IMAGE_QOS)
    robot = get_robot("panda")
    names = list(robot.arm_joints) + ["gripper"]
    q = np.array(list(robot.home_qpos) + [0.0])
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
              for _ in range(4)]
    # measure from the moment every subscriber is matched: a volatile topic delivers
    # nothing published before discovery, which is start-up, not a transport drop
    deadline = time.monotonic() + 30
    want = ((pub_js, 2), (pub_ee, 1), (pub_img, 1))  # policy node (+ the probe on joints)
    while time.monotonic() < deadline and any(p.get_subscription_count() < n for p, n in want):
        time.sleep(0.05)
    time.sleep(0.5)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    n_js = n_img = 0
    t0 = time.monotonic()
    next_js, next_img = t0, t0
    while not stop.is_set() and time.monotonic() - t0 < args.seconds:
        now = time.monotonic()
        if now >= next_js:
            t = time.time()
            pub_js.publish(M.joint_state_msg(names, q, np.zeros_like(q), t))
            pub_ee.publish(M.pose_msg([0.4, 0.0, 0.4], [1.0, 0.0, 0.0, 0.0], t))
            n_js += 1
            next_js += 1.0 / args.joint_hz
        if now >= next_img:
            pub_img.publish(M.image_msg(frames[n_img % len(frames)], time.time(), "front"))
            n_img += 1
            next_img += 1.0 / args.image_hz
        time.sleep(max(0.0, min(next_js, next_img) - time.monotonic()))
    seconds = time.monotonic() - t0
    time.sleep(4.0)  # reliable repair of late losses needs a heartbeat (Fast DDS: every 3 s)
    print(json.dumps({"joint_states": n_js, "images": n_img, "seconds": seconds}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def make_policy(name: str, out: Path) -> str:
    from robolearn.policies.testing import synthetic_policy

    pol = synthetic_policy(name, cameras=["front"])[0]
    pol.config.fps = 10.0  # trained on 10 Hz data, like the sim's demos
    pol.save_pretrained(out)
    return str(out)


def in_process_ms(path: str, width: int, height: int, iters: int = 20) -> float:
    """The same policy's chunk inference called directly on a driver-sized observation."""
    import torch

    from robolearn import keys as K
    from robolearn.control.window import window_batch
    from robolearn.policies.base import load_policy

    pol = load_policy(path).eval()
    rng = np.random.default_rng(0)
    step = {K.OBS_STATE: np.zeros(15, np.float32),
            K.image_key("front"): rng.integers(0, 255, (3, height, width), dtype=np.uint8)}
    ts = []
    for i in range(iters + 2):
        t = time.perf_counter()
        with torch.no_grad():
            pol.predict_action_chunk(window_batch([[step]], pol.config.n_obs, ["pick it up"]))
        if i >= 2:
            ts.append((time.perf_counter() - t) * 1e3)
    return float(np.percentile(ts, 50))


def measure(args, ckpt: str, hz: float, env: dict) -> dict:
    import rclpy
    import rclpy.executors
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from robolearn.ros_nodes import messages as M
    from robolearn.ros_nodes.graph import NodeSpec, command

    ns = f"bench_ros_{os.getpid()}_{int(hz)}"
    spec = NodeSpec("policy_node", "policy", ["policy.yaml"],
                    {"checkpoint": ckpt, "control_hz": float(hz), "autostart": True,
                     "instruction": "pick up the red block", "max_age": 1.0}, namespace=ns)
    # output to a file, not an unread pipe: a full pipe would block the node mid-run
    pol = subprocess.Popen(command(spec), env=env, stdout=tempfile.TemporaryFile(),
                           stderr=subprocess.STDOUT)
    node = rclpy.create_node("bench_probe", namespace=ns)
    got = {"js": 0, "cmd": 0}
    diag = {}
    node.create_subscription(JointState, "joint_states",
                             lambda m: got.__setitem__("js", got["js"] + 1), M.JOINT_QOS)
    node.create_subscription(Float64MultiArray, "joint_position_command",
                             lambda m: got.__setitem__("cmd", got["cmd"] + 1), M.STATE_QOS)

    def on_diag(msg):
        for st in msg.status:
            if st.hardware_id == "policy":
                diag.update({kv.key: kv.value for kv in st.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    # the probe spins its own executor thread, so it keeps up with 200 Hz on its own
    ex = rclpy.executors.SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    # wait until the policy runs, then start the driver for the measured window
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and diag.get("status") not in ("running",) and \
            "holding" not in diag.get("status", ""):
        time.sleep(0.1)
    drv = subprocess.Popen([sys.executable, __file__, "--driver", "--seconds", str(args.seconds),
                            "--width", str(args.width), "--height", str(args.height),
                            "--image-hz", str(args.image_hz), "--joint-hz", str(args.joint_hz),
                            "--ns", ns], env=env, stdout=subprocess.PIPE, text=True)
    sent = json.loads(drv.communicate(timeout=args.seconds + 60)[0].strip().splitlines()[-1])
    time.sleep(2.5)  # late messages and one more diagnostics round (counts are cumulative)
    ex.shutdown()
    node.destroy_node()
    pol.send_signal(signal.SIGINT)
    try:
        pol.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pol.kill()
    secs = sent["seconds"]
    return {
        "control_hz": hz, "status": diag.get("status"),
        "image_hz_sent": sent["images"] / secs,
        "image_hz_at_policy": int(diag.get("received_cam", 0)) / secs,
        "joint_hz_sent": sent["joint_states"] / secs,
        "joint_hz_at_policy": int(diag.get("received_joints", 0)) / secs,
        "joint_drops_at_policy": sent["joint_states"] - int(diag.get("received_joints", 0)),
        "joint_drops_probe": sent["joint_states"] - got["js"],
        "e2e_ms_p50": float(diag.get("e2e_ms_p50", "nan")),
        "e2e_ms_p99": float(diag.get("e2e_ms_p99", "nan")),
        "tick_jitter_ms_p50": float(diag.get("tick_jitter_ms_p50", "nan")),
        "tick_jitter_ms_p99": float(diag.get("tick_jitter_ms_p99", "nan")),
        "control_rate_hz": float(diag.get("control_rate_hz", "nan")),
        "starved_ticks": int(diag.get("starved_ticks", 0)),
        "inference_ms_p50": float(diag.get("inference_ms_p50", "nan")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--policy", default="flow_vla")
    ap.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0, 50.0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--image-hz", type=float, default=30.0)
    ap.add_argument("--joint-hz", type=float, default=200.0)
    ap.add_argument("--json", default="")
    ap.add_argument("--ns", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.driver:
        return run_driver(args)
    import rclpy

    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", str(Path(sys.executable).parents[1]))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    from robolearn.ros_nodes.graph import node_environment

    env.update(node_environment(env))  # the graph's DDS profile, as launch files set it
    os.environ.update({k: env[k] for k in ("AMENT_PREFIX_PATH", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           "ROS_DOMAIN_ID", "FASTRTPS_DEFAULT_PROFILES_FILE")})
    tmp = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    ckpt = make_policy(args.policy, tmp / "policy")
    base = in_process_ms(ckpt, args.width, args.height)
    print(f"{args.policy}, 1 camera {args.width}x{args.height} @ {args.image_hz:g} Hz, joints @ "
          f"{args.joint_hz:g} Hz; in-process chunk inference p50 {base:.1f} ms", flush=True)
    rclpy.init()
    rows = []
    for hz in args.rates:
        r = measure(args, ckpt, hz, env)
        r["e2e_over_in_process"] = r["e2e_ms_p50"] / base
        rows.append(r)
        print(f"{hz:5.0f} Hz control: images {r['image_hz_at_policy']:.1f}/{r['image_hz_sent']:.1f}"
              f" Hz, joints {r['joint_hz_at_policy']:.0f}/{r['joint_hz_sent']:.0f} Hz, joint drops "
              f"{r['joint_drops_at_policy']} at policy / {r['joint_drops_probe']} at probe | e2e p50 {r['e2e_ms_p50']:.1f} ms p99 "
              f"{r['e2e_ms_p99']:.1f} ms (x{r['e2e_over_in_process']:.2f} in-process) | jitter "
              f"p50 {r['tick_jitter_ms_p50']:.2f} ms p99 {r['tick_jitter_ms_p99']:.2f} ms, rate "
              f"{r['control_rate_hz']:.1f} Hz, starved {r['starved_ticks']} | inference in the node p50 "
              f"{r['inference_ms_p50']:.0f} ms", flush=True)
    rclpy.try_shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps({"in_process_ms_p50": base, "rows": rows},
                                              indent=2))


if __name__ == "__main__":
    main()
