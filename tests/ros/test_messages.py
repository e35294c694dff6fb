import numpy as np
import pytest

pytest.importorskip("rclpy")

from robolearn.ros_nodes import messages as M  # noqa: E402


def test_stamp_roundtrip_and_no_wrap_below_a_whole_second():
    t = 0.0
    for _ in range(100):  # accumulated float steps like the sim bridge's clock
        t += 0.05
        s = M.stamp(t)
        assert 0 <= s.nanosec < 1_000_000_000
        assert abs(M.to_seconds(s) - t) < 1e-8
    assert M.to_seconds(M.stamp(2.9999999999)) == pytest.approx(3.0)


def test_image_roundtrip_and_bgr():
    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    msg = M.image_msg(rgb, 1.5, "cam")
    np.testing.assert_array_equal(M.image_array(msg), rgb)
    msg.encoding = "bgr8"
    np.testing.assert_array_equal(M.image_array(msg), rgb[..., ::-1])
    msg.encoding = "16UC1"
    with pytest.raises(ValueError, match="unsupported"):
        M.image_array(msg)


def test_quaternion_is_unit_and_matches_rotation():
    ang = 0.7
    m = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    q = M.mat_to_quat_wxyz(m)
    np.testing.assert_allclose(q, [np.cos(ang / 2), 0, 0, np.sin(ang / 2)], atol=1e-12)
    np.testing.assert_allclose(M.mat_to_quat_wxyz(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0], atol=1e-12)
