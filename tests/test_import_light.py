"""`import robolearn` (and its data layer) must not pull in rclpy, mujoco, nerfstudio or
transformers: the library stays usable in a minimal install and fast to import."""

import subprocess
import sys

HEAVY = ["rclpy", "mujoco", "nerfstudio", "transformers", "diffusers", "torch"]


def _imported_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_robolearn_is_light():
    mods = _imported_after("import robolearn, robolearn.keys, robolearn.config")
    assert not [m for m in HEAVY if m in mods]


def test_data_layer_does_not_import_ros_sim_or_models():
    mods = _imported_after("import robolearn.data.store, robolearn.data.dataset, robolearn.cli.data")
    assert not [m for m in HEAVY if m in mods]
