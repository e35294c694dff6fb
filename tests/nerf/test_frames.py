"""Frame validation, the memory-bounded buffer, sampling weights, pose sources, time sync.
numpy only: runs without nerfstudio."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from robolearn.nerf import synthetic as S
from robolearn.nerf.buffer import FrameBuffer, frame_nbytes
from robolearn.nerf.frames import (Frame, FrameError, Intrinsics, opencv_to_opengl,
                                   validate_frame)
from robolearn.nerf.sync import FixedCameraPose, PoseStream, TimeSync, WristCameraFK


def good(size=16):
    return S.make_frame(S.orbit_pose(0.4), size)


@pytest.mark.parametrize("mutate, match", [
    (lambda f: setattr(f, "rgb", np.zeros((8, 16, 3), np.uint8)), "expected \\(16, 16, 3\\)"),
    (lambda f: f.c2w.__setitem__((0, 3), np.nan), "NaN"),
    (lambda f: f.c2w.__setitem__((slice(0, 3), 0), f.c2w[:3, 0] * 1.2), "not orthonormal"),
    (lambda f: setattr(f, "intrinsics", None), "no intrinsics"),
    (lambda f: setattr(f, "intrinsics", Intrinsics(10, 10, 4, 4, 8, 8)), "intrinsics are for"),
    (lambda f: setattr(f, "depth", np.zeros((4, 4))), "depth has shape"),
])
def test_bad_frames_are_rejected_with_a_clear_error(mutate, match):
    f = good()
    f.c2w = f.c2w.copy()
    mutate(f)
    with pytest.raises(FrameError, match=match):
        validate_frame(f, 16, 16)


def test_valid_frame_is_normalised():
    f = good()
    f.rgb = f.rgb.astype(np.float32) / 255.0
    f.depth = np.where(f.depth > 0, f.depth, np.nan)
    out = validate_frame(f, 16, 16)
    assert out.rgb.dtype == np.uint8 and out.c2w.shape == (4, 4)
    assert np.isfinite(out.depth).all()


def test_synthetic_depth_is_exact_on_the_floor():
    # camera straight above the origin looking down: the centre pixel sees the floor (the
    # sphere and box are off-centre) at z-depth == camera height
    c2w = S.look_at((0.6, -0.6, 1.0), (0.6, -0.6, 0.0), up=(0, 1, 0))
    f = S.make_frame(c2w, 17)
    assert f.depth[8, 8] == pytest.approx(1.0, abs=1e-5)


def test_opencv_to_opengl_flips_the_viewing_axis():
    cv = np.eye(4)  # OpenCV camera looks along +z of its frame
    gl = opencv_to_opengl(cv)
    assert np.allclose(-gl[:3, 2], cv[:3, 2])


def test_buffer_stays_within_budget_on_a_long_stream_and_keeps_novel_views():
    budget_mb = 24 * frame_nbytes(16, 16, True) / 2**20  # room for exactly 24 frames
    buf = FrameBuffer(16, 16, budget_mb, protect_recent=4)
    assert buf.capacity == 24
    start_bytes = buf.nbytes
    # one novel view, then 300 frames hovering around a single other pose
    novel = validate_frame(S.make_frame(S.orbit_pose(math.pi), 16), 16, 16)
    buf.add(novel)
    for i in range(300):
        f = S.make_frame(S.orbit_pose(0.02 * math.sin(i)), 16, t=i)
        buf.add(validate_frame(f, 16, 16))
    assert len(buf) == 24 and buf.nbytes == start_bytes
    assert buf.n_evicted == 301 - 24
    # the one frame that saw the other side survived: it is the least redundant
    assert (buf.arrival == 0).any()
    # the newest frames are always kept
    assert set(range(297, 301)) <= set(buf.arrival.tolist())


def test_recency_weights_favour_new_frames_without_forgetting_old_ones():
    buf = FrameBuffer(16, 16, 1.0, max_frames=40)
    for i, f in enumerate(S.orbit_stream(40, 16)):
        buf.add(validate_frame(f, 16, 16))
    w = buf.sampling_weights("recency", recent_fraction=0.5, recency_tau=4)
    newest, oldest = w[buf.arrival == 39][0], w[buf.arrival == 0][0]
    assert newest > 5 * oldest and oldest >= 0.5 / 40 - 1e-12
    assert w.sum() == pytest.approx(1.0)
    u = buf.sampling_weights("uniform")
    assert np.allclose(u[buf.valid], 1 / 40)
    with pytest.raises(ValueError, match="valid: uniform, recency"):
        buf.sampling_weights("newest")


def test_time_sync_pairs_within_slop_and_warns_when_nothing_syncs(caplog):
    stream = PoseStream()
    for i in range(20):
        stream.push(100.0 + 0.1 * i, np.eye(4) * 1.0)
    sync = TimeSync(stream, slop=0.02, warn_after=5)
    assert sync.match(100.51) is not None
    with caplog.at_level(logging.WARNING):
        for i in range(6):  # images stamped with wall time, poses with sim time
            assert sync.match(5000.0 + i) is None
    assert sync.warned and "no pose within slop=0.020" in caplog.text
    assert "away" in caplog.text


def test_try_match_waits_for_a_pose_that_may_still_arrive():
    """Images often arrive before their pose (another topic): not a miss until the pose
    stream has moved past the image's stamp + slop."""
    stream = PoseStream()
    sync = TimeSync(stream, slop=0.02, warn_after=5)
    stream.push(1.0, np.eye(4))
    assert sync.try_match(1.1) == (None, False)  # its pose can still come
    stream.push(1.1, 2.0 * np.eye(4))
    pose, final = sync.try_match(1.1)
    assert final and pose[0, 0] == 2.0 and sync.n_matched == 1
    stream.push(1.3, np.eye(4))
    assert sync.try_match(1.2) == (None, True) and sync.misses_in_a_row == 1  # too late now


def test_wrist_fk_source_composes_mount_and_fixed_camera():
    mount = np.eye(4)
    mount[:3, 3] = [0.0, 0.0, 0.1]

    def fk(q):  # a 1-joint "arm": base rotation about z, link at 0.5 m
        t = np.eye(4)
        c, s = math.cos(q[0]), math.sin(q[0])
        t[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        t[:3, 3] = [0.5 * c, 0.5 * s, 0.0]
        return t

    src = WristCameraFK(fk, mount)
    src.push_joints(1.0, np.array([math.pi / 2]))
    pose, dt = src.pose_at(1.01, slop=0.05)
    assert np.allclose(pose[:3, 3], [0.0, 0.5, 0.1]) and dt == pytest.approx(0.01)
    assert src.pose_at(2.0, slop=0.05)[0] is None
    assert FixedCameraPose(np.eye(4)).pose_at(123.0, 0.0)[0] is not None


def test_frame_assembler_pairs_images_with_fk_poses():
    from robolearn.nerf.sync import FrameAssembler

    src = WristCameraFK(lambda q: np.eye(4) @ np.diag([1, 1, 1, 1.0]), np.eye(4))
    asm = FrameAssembler(TimeSync(src, slop=0.01), Intrinsics.from_fovy(50, 16, 16))
    img = np.zeros((16, 16, 3), np.uint8)
    assert asm.on_image(1.0, img) is None  # no joint state yet
    src.push_joints(1.005, np.zeros(7))
    f = asm.on_image(1.0, img)
    assert f is not None and f.timestamp == 1.0 and validate_frame(f, 16, 16).c2w.shape == (4, 4)


def test_importing_the_bridge_package_stays_light():
    import subprocess
    import sys

    code = ("import sys, robolearn.nerf, robolearn.nerf.config, robolearn.nerf.frames, "
            "robolearn.nerf.buffer, robolearn.nerf.sync, robolearn.nerf.sources, robolearn.cli.nerf;"
            "heavy = [m for m in ('torch', 'nerfstudio', 'mujoco', 'rclpy', 'torchvision') "
            "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
