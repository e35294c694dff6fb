"""The package builds the ROS way (colcon, ament_python) and the pip way, with the same
contents: executables in lib/robolearn (for `ros2 run`), launch/config files in share/."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _source_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (ROOT / f).is_file()]


def test_package_xml_format3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "robolearn"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.iter("exec_depend")}
    for d in ("rclpy", "sensor_msgs", "trajectory_msgs", "std_srvs", "lifecycle_msgs",
              "diagnostic_msgs", "geometry_msgs"):
        assert d in deps
    assert (ROOT / "resource" / "robolearn").exists()


def test_no_shadowing_launch_package_installed():
    """PyPI's `launch` 0.1.3 is an unrelated project that shadows ROS' launch module."""
    out = subprocess.run([sys.executable, "-m", "pip", "show", "launch"], capture_output=True,
                         text=True)
    assert out.returncode != 0 or "ros" in out.stdout.lower()


@pytest.mark.skipif(not (BIN / "colcon").exists(), reason="colcon not installed (dev extra)")
def test_colcon_build_installs_package(tmp_path):
    src = tmp_path / "ws" / "src" / "robolearn"
    for f in _source_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    ws = tmp_path / "ws"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    r = subprocess.run([str(BIN / "colcon"), "build", "--base-paths", "src"], cwd=ws, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    inst = ws / "install" / "robolearn"
    assert (inst / "lib" / "robolearn" / "robolearn-data").exists()
    assert (inst / "share" / "robolearn" / "package.xml").exists()
    assert (inst / "share" / "ament_index" / "resource_index" / "packages" / "robolearn").exists()
    assert (inst / "share" / "robolearn" / "configs" / "demo.yaml").exists()
    site = next(inst.glob("lib/python3*/site-packages"))
    assert (site / "robolearn" / "envs" / "__init__.py").exists()
    assert (site / "robolearn" / "ros_nodes" / "__init__.py").exists()
    # the installed executable runs from the install space, not from the source tree
    run_env = {**env, "PYTHONPATH": str(site)}
    r = subprocess.run([str(inst / "lib" / "robolearn" / "robolearn-data"), "--help"],
                       cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "merge" in r.stdout, r.stderr
