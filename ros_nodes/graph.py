"""The node graphs robolearn launches, described once (no rclpy, no launch imports).

Launch files (``launch/*.launch.py``) are thin adapters that turn these descriptions into
``launch_ros`` ``Node`` actions; tests start the *same* descriptions as subprocesses with
:func:`command`, so the graph CI tests is the graph that launches on a robot.

Every launch argument of a graph is used by it (``tests/ros/test_launch_static.py``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "robolearn"


@dataclass
class NodeSpec:
    """One node: its executable (= node name = module), parameters and remappings."""

    executable: str
    name: str
    params_files: list[str] = field(default_factory=list)  # names under configs/ros/
    parameters: dict[str, object] = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    namespace: str = ""


#: graph -> launch argument -> (default, description)
LAUNCH_ARGS: dict[str, dict[str, tuple[str, str]]] = {
    "sim": {
        "task": ("PickPlace", "sim task (robolearn-collect --list-tasks)"),
        "robot": ("panda", "arm model: panda or ur5e"),
        "cameras": ("front,wrist", "comma-separated cameras to publish"),
        "image_size": ("96", "camera resolution in pixels (square)"),
        "control_hz": ("50.0", "sim control/physics publish rate"),
        "camera_hz": ("10.0", "image publish rate"),
        "store": ("runs/ros/recorded.zarr", "store the recorder writes episodes to"),
        "record_rate": ("10.0", "recorder output rate in Hz"),
        "checkpoint": ("", "policy checkpoint (run/step/policy folder); empty = no policy_node"),
        "policy_hz": ("10.0", "policy control rate (the rate its demos were recorded at)"),
        "planner": ("false", "also run planner_node: it re-conditions the policy per skill"),
        "nerf": ("false", "also run nerf_node on the wrist camera (needs nerfstudio: make nerf-venv)"),
    },
    "robot": {
        "checkpoint": ("", "policy checkpoint (run, step or policy folder)"),
        "robot": ("panda", "arm model whose joint limits apply: panda or ur5e"),
        "policy_hz": ("10.0", "policy control rate (the rate its demos were recorded at)"),
        "joint_states": ("joint_states", "JointState topic of the robot"),
        "ee_pose": ("ee_pose", "PoseStamped topic of the end effector"),
        "command": ("joint_position_command", "command topic (Float64MultiArray)"),
        "store": ("runs/ros/recorded.zarr", "store the recorder writes episodes to"),
        "cameras": ("front,wrist", "comma-separated cameras to record"),
        "scene_state": ("task/state", "JSON symbolic scene state topic (perception) for the planner"),
        "nerf": ("false", "also run nerf_node (needs nerfstudio: make nerf-venv)"),
        "nerf_camera": ("wrist", "camera nerf_node trains on (<cam>/image_raw, camera_info, pose)"),
    },
    "record": {
        "store": ("runs/ros/recorded.zarr", "store the recorder writes episodes to"),
        "cameras": ("front,wrist", "comma-separated cameras to record"),
        "record_rate": ("10.0", "recorder output rate in Hz"),
        "joint_states": ("joint_states", "JointState topic of the robot"),
        "command": ("joint_position_command", "command topic (Float64MultiArray)"),
    },
}


def _flag(s: str) -> bool:
    return str(s).lower() in ("true", "1", "yes")


def _cams(s: str) -> list[str]:
    return [c.strip() for c in str(s).split(",") if c.strip()]


def graph(name: str, **args: str) -> list[NodeSpec]:
    """The nodes of graph ``name`` for the given launch arguments (defaults filled in)."""
    if name not in LAUNCH_ARGS:
        raise KeyError(f"unknown graph {name!r}; graphs: {sorted(LAUNCH_ARGS)}")
    unknown = set(args) - set(LAUNCH_ARGS[name])
    if unknown:
        raise KeyError(f"unknown launch arguments {sorted(unknown)} for graph {name!r}; "
                       f"valid: {sorted(LAUNCH_ARGS[name])}")
    a = {k: str(args.get(k, d)) for k, (d, _) in LAUNCH_ARGS[name].items()}
    if name == "sim":
        nodes = [
            NodeSpec("sim_bridge_node", "sim_bridge", ["sim_bridge.yaml"], {
                "task": a["task"], "robot": a["robot"], "cameras": _cams(a["cameras"]),
                "image_size": int(a["image_size"]), "control_hz": float(a["control_hz"]),
                "camera_hz": float(a["camera_hz"])}),
            NodeSpec("recorder_node", "recorder", ["recorder.yaml"], {
                "store": a["store"], "cameras": _cams(a["cameras"]),
                "rate": float(a["record_rate"]), "task": a["task"], "robot": a["robot"],
                "use_sim_time": True}),
        ]
        planner = _flag(a["planner"])
        if a["checkpoint"]:
            nodes.append(NodeSpec("policy_node", "policy", ["policy.yaml"], {
                "checkpoint": a["checkpoint"], "robot": a["robot"],
                "control_hz": float(a["policy_hz"]), "autostart": True},
                # with the planner, the policy follows the planner's per-skill instruction
                remappings=[("task/instruction", "policy/instruction")] if planner else []))
        if planner:
            nodes.append(NodeSpec("planner_node", "planner", ["planner.yaml"]))
        if _flag(a["nerf"]):
            nodes.append(NodeSpec("nerf_node", "nerf", ["nerf.yaml"], {
                "camera": "wrist", "use_sim_time": True}))
        return nodes
    if name == "robot":
        # a real arm: its driver publishes joint_states/ee_pose/cameras and takes commands;
        # the policy node waits for `ros2 lifecycle set /policy configure` + `activate`
        remap = [("joint_states", a["joint_states"]), ("ee_pose", a["ee_pose"]),
                 ("joint_position_command", a["command"])]
        nodes = [
            NodeSpec("policy_node", "policy", ["policy.yaml"], {
                "checkpoint": a["checkpoint"], "robot": a["robot"],
                "control_hz": float(a["policy_hz"])},
                remappings=remap + [("task/instruction", "policy/instruction")]),
            NodeSpec("recorder_node", "recorder", ["recorder.yaml"], {
                "store": a["store"], "cameras": _cams(a["cameras"]), "robot": a["robot"]},
                remappings=remap[::2]),
            NodeSpec("planner_node", "planner", ["planner.yaml"],
                     remappings=[("task/state", a["scene_state"])]),
        ]
        if _flag(a["nerf"]):
            nodes.append(NodeSpec("nerf_node", "nerf", ["nerf.yaml"],
                                  {"camera": a["nerf_camera"]}))
        return nodes
    # record: the recorder alone, against a real robot's topics (remappable)
    return [NodeSpec("recorder_node", "recorder", ["recorder.yaml"], {
        "store": a["store"], "cameras": _cams(a["cameras"]), "rate": float(a["record_rate"])},
        remappings=[("joint_states", a["joint_states"]),
                    ("joint_position_command", a["command"])])]


def share_dir() -> Path:
    """configs/ros of the source checkout, or of the installed package (colcon/pip)."""
    here = Path(__file__).resolve().parents[1] / "configs" / "ros"
    if here.is_dir():
        return here
    for prefix in [sys.prefix] + os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        cand = Path(prefix) / "share" / PACKAGE / "configs" / "ros"
        if prefix and cand.is_dir():
            return cand
    raise FileNotFoundError("cannot find robolearn's configs/ros; install the package")


#: Fast DDS transport profile of every node (large shared-memory segments for images)
DDS_PROFILE = "fastdds.xml"


def node_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """Variables the graph's processes need beyond the caller's: the Fast DDS profile
    (``configs/ros/fastdds.xml``) unless FASTRTPS_DEFAULT_PROFILES_FILE is already set."""
    env = os.environ if env is None else env
    if env.get("FASTRTPS_DEFAULT_PROFILES_FILE"):
        return {}
    return {"FASTRTPS_DEFAULT_PROFILES_FILE": str(share_dir() / DDS_PROFILE)}


def _param_arg(k: str, v: object) -> str:
    if isinstance(v, bool):
        return f"{k}:={'true' if v else 'false'}"
    if isinstance(v, (list, tuple)):
        return f"{k}:=[" + ",".join(f"'{x}'" if isinstance(x, str) else str(x) for x in v) + "]"
    if isinstance(v, str):
        return f"{k}:='{v}'"
    return f"{k}:={v}"


def command(spec: NodeSpec) -> list[str]:
    """argv that runs ``spec`` as a process (what ``launch_ros.actions.Node`` would run)."""
    exe = Path(sys.executable).parent / spec.executable
    argv = [str(exe), "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        argv += ["-r", f"__ns:=/{spec.namespace.lstrip('/')}"]
    for f in spec.params_files:
        argv += ["--params-file", str(share_dir() / f)]
    for k, v in spec.parameters.items():
        argv += ["-p", _param_arg(k, v)]
    for src, dst in spec.remappings:
        argv += ["-r", f"{src}:={dst}"]
    return argv
