"""Posed RGB-D frames from the MuJoCo tabletop: depth and pose agree with the scene."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def stream():
    pytest.importorskip("mujoco")
    try:
        from robolearn.envs.assets import is_installed
    except ImportError:
        pytest.skip("robolearn.envs not importable")
    if not is_installed():
        pytest.skip("robot assets not installed (python -m robolearn.envs.assets)")
    from robolearn.nerf.sim_source import SimCameraStream

    s = SimCameraStream("panda", 32, ("wrist", "front"))
    frames = list(s.frames(3))
    yield s, frames
    s.close()


def test_frames_carry_rgb_depth_and_valid_poses(stream):
    from robolearn.nerf.frames import validate_frame

    _, frames = stream
    assert [sf.camera for sf in frames[:2]] == ["wrist", "front"]
    for sf in frames:
        f = validate_frame(sf.frame, 32, 32)  # orthonormal pose, intrinsics, sizes
        assert f.depth is not None and (f.depth > 0).mean() > 0.9


def test_front_camera_depth_backprojects_onto_the_table(stream):
    _, frames = stream
    f = frames[1].frame
    k = f.intrinsics
    j, i = 28, 16  # lower middle of the image: the table top in front of the robot
    z = f.depth[j, i]
    d = np.array([(i + 0.5 - k.cx) / k.fx, -(j + 0.5 - k.cy) / k.fy, -1.0]) * z
    p = f.c2w[:3, :3] @ d + f.c2w[:3, 3]
    assert abs(p[2]) < 0.03, p  # table top is z = 0


def test_forward_kinematics_reproduces_the_wrist_camera_pose(stream):
    s, frames = stream
    sf = frames[0]
    pose = s.fk(sf.qpos_arm) @ s.fk.t_body_cam
    np.testing.assert_allclose(pose, sf.frame.c2w, atol=1e-6)
