"""Converters on inputs written by the formats' own writers: h5py (robomimic layout) and
rosbags' rosbag2 Writer (MCAP and sqlite3)."""

import json

import numpy as np
import pytest

from robolearn import keys as K
from robolearn.cli.data import main as data_main
from robolearn.data.convert import get_converter
from robolearn.data.store import TrajectoryStore

h5py = pytest.importorskip("h5py")


def _robomimic_file(path, lengths=(12, 9, 15), bad_demo=None):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {
            "robots": ["Panda"], "control_freq": 20,
            "controller_configs": {"type": "OSC_POSE"}}})
        for i, n in enumerate(lengths):
            d = data.create_group(f"demo_{i}")
            d.attrs["num_samples"] = n
            act = rng.normal(size=(n, 7)).astype(np.float64)
            if i == bad_demo:
                act[3, 2] = np.nan
            d["actions"] = act
            d["rewards"] = (np.arange(n) == n - 1).astype(np.float64)
            d["dones"] = (np.arange(n) == n - 1).astype(np.int64)
            d["states"] = rng.normal(size=(n, 32))
            o = d.create_group("obs")
            o["robot0_eef_pos"] = np.full((n, 3), i, np.float64)
            o["robot0_eef_quat"] = rng.normal(size=(n, 4))
            o["robot0_gripper_qpos"] = rng.normal(size=(n, 2))
            o["object"] = rng.normal(size=(n, 10))
            o["robot0_joint_pos"] = rng.normal(size=(n, 7))
            o["agentview_image"] = rng.integers(0, 255, (n, 24, 24, 3), dtype=np.uint8)
            o["robot0_eye_in_hand_image"] = rng.integers(0, 255, (n, 24, 24, 3), dtype=np.uint8)
            d.create_group("next_obs")
        data.attrs["total"] = sum(lengths)
        f.create_group("mask")["train"] = np.array([b"demo_0", b"demo_2"])


def test_robomimic_roundtrip(tmp_path):
    src, dst = tmp_path / "lift.hdf5", tmp_path / "lift.zarr"
    _robomimic_file(src)
    rep = get_converter("robomimic")(str(src), str(dst), progress=False)
    assert rep.check_ok and rep.episodes == 3 and rep.steps == 36
    assert "obs/robot0_joint_pos" in rep.dropped_keys and "states" in rep.dropped_keys
    store = TrajectoryStore.open(dst)
    assert store.episode_lengths.tolist() == [12, 9, 15]
    ep = store.get_episode(1)
    with h5py.File(src, "r") as f:
        d = f["data/demo_1"]
        np.testing.assert_allclose(ep[K.ACTION], d["actions"][:].astype(np.float32))
        np.testing.assert_array_equal(ep[K.image_key("agentview")], d["obs/agentview_image"][:])
        np.testing.assert_allclose(ep[K.OBS_STATE][:, :3], d["obs/robot0_eef_pos"][:])
    assert ep[K.OBS_STATE].shape == (9, 3 + 4 + 2 + 10)
    m = store.episode_meta(0)
    assert m["robot"] == "Panda" and m["fps"] == 20 and m["success"] and m["task"] == "Lift"
    assert m["action_space"] == "osc_pose"


def test_robomimic_filter_key_and_bad_demo_reported(tmp_path):
    src = tmp_path / "lift.hdf5"
    _robomimic_file(src, bad_demo=2)
    rep = get_converter("robomimic")(str(src), str(tmp_path / "a.zarr"), filter_key="train",
                                     progress=False)
    assert rep.episodes == 1 and rep.check_ok  # demo_2 has a NaN action
    assert len(rep.dropped_episodes) == 1 and "demo_2" in rep.dropped_episodes[0]
    assert "NaN" in rep.dropped_episodes[0]


# ------------------------------------------------------------------ rosbag2
rosbags = pytest.importorskip("rosbags")


def _write_bag(path, storage, gap_at=3.0, n_secs=6.0, with_marker=False):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.LATEST)
    T = ts.types
    Time = T["builtin_interfaces/msg/Time"]
    Header = T["std_msgs/msg/Header"]
    JointState = T["sensor_msgs/msg/JointState"]
    Image = T["sensor_msgs/msg/Image"]
    JT, JTP = T["trajectory_msgs/msg/JointTrajectory"], T["trajectory_msgs/msg/JointTrajectoryPoint"]
    Duration = T["builtin_interfaces/msg/Duration"]
    Bool = T["std_msgs/msg/Bool"]
    names = ["j1", "j2", "j3"]
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    events = []  # (t, kind)
    for k in range(int(n_secs * 100)):  # joint states at 100 Hz
        events.append((k / 100, "js"))
    for k in range(int(n_secs * 15)):  # images at 15 Hz
        events.append((k / 15 + 0.003, "img"))
    for k in range(int(n_secs * 10)):  # commands at 10 Hz
        events.append((k / 10 + 0.001, "cmd"))
    if gap_at is not None:  # 1.5 s of silence in the middle -> two episodes
        events = [(t if t < gap_at else t + 1.5, kind) for t, kind in events]
    events.sort()
    with Writer(path, version=9, storage_plugin=plugin) as w:
        c_js = w.add_connection("/joint_states", JointState.__msgtype__, typestore=ts)
        c_img = w.add_connection("/cam/image_raw", Image.__msgtype__, typestore=ts)
        c_cmd = w.add_connection("/arm/command", JT.__msgtype__, typestore=ts)
        c_tf = w.add_connection("/unused", Bool.__msgtype__, typestore=ts)
        c_mark = w.add_connection("/record", Bool.__msgtype__, typestore=ts) if with_marker else None
        if with_marker:
            w.write(c_mark, int(0.5e9), ts.serialize_cdr(Bool(data=True), Bool.__msgtype__))
            w.write(c_mark, int(2.5e9), ts.serialize_cdr(Bool(data=False), Bool.__msgtype__))
        w.write(c_tf, 1, ts.serialize_cdr(Bool(data=True), Bool.__msgtype__))
        for t, kind in events:
            ns = int(t * 1e9)
            hdr = Header(stamp=Time(sec=int(t), nanosec=int((t % 1) * 1e9)), frame_id="base")
            if kind == "js":
                msg = JointState(header=hdr, name=["j3", "j1", "j2"],  # out of order on purpose
                                 position=np.array([3 * t, t, 2 * t]), velocity=np.zeros(3),
                                 effort=np.zeros(3))
                w.write(c_js, ns, ts.serialize_cdr(msg, JointState.__msgtype__))
            elif kind == "img":
                img = np.zeros((8, 10, 3), np.uint8)
                img[..., 2] = int(t * 10) % 256  # bgr8: byte 2 is red; it encodes the time
                msg = Image(header=hdr, height=8, width=10, encoding="bgr8", is_bigendian=0,
                            step=30, data=img.reshape(-1))
                w.write(c_img, ns, ts.serialize_cdr(msg, Image.__msgtype__))
            else:
                pt = JTP(positions=np.array([t + 1, 2 * t + 1, 3 * t + 1]), velocities=np.zeros(0),
                         accelerations=np.zeros(0), effort=np.zeros(0),
                         time_from_start=Duration(sec=0, nanosec=100_000_000))
                msg = JT(header=hdr, joint_names=names, points=[pt])
                w.write(c_cmd, ns, ts.serialize_cdr(msg, JT.__msgtype__))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rosbag_resample_split_and_values(tmp_path, storage):
    bag = tmp_path / f"bag_{storage}"
    _write_bag(bag, storage)
    dst = tmp_path / "out.zarr"
    rep = get_converter("rosbag")(str(bag), str(dst), cameras={"front": "/cam/image_raw"},
                                  joint_states="/joint_states", action="/arm/command",
                                  rate=10.0, joint_names=["j1", "j2", "j3"], progress=False,
                                  instruction="wave")
    assert rep.check_ok, rep.check_errors
    assert rep.episodes == 2  # split at the 1.5 s gap
    assert "topic /unused" in rep.dropped_keys
    store = TrajectoryStore.open(dst)
    for i in range(2):
        ep = store.get_episode(i)
        t = store.episode_meta(i)["t_start"] + np.arange(len(ep[K.ACTION])) / 10.0
        # hold policy: latest joint state at or before the tick (100 Hz -> within 10 ms)
        assert np.all(np.abs(ep[K.OBS_STATE][:, 0] - t) <= 0.0101 + 1e-6)
        np.testing.assert_allclose(ep[K.OBS_STATE][:, 1], 2 * ep[K.OBS_STATE][:, 0], rtol=1e-5)
        np.testing.assert_allclose(ep[K.OBS_STATE][:, 2], 3 * ep[K.OBS_STATE][:, 0], rtol=1e-5)
        # command positions[0] = its time + 1; hold takes the latest command <= tick
        lag = t - (ep[K.ACTION][:, 0] - 1.0)
        assert np.all((lag >= -1e-4) & (lag <= 0.1 + 1e-4)), lag
        np.testing.assert_allclose(ep[K.ACTION][:, 2] - 1, 3 * (ep[K.ACTION][:, 0] - 1), atol=1e-4)
        img = ep[K.image_key("front")]
        assert img.shape[1:] == (8, 10, 3)
        # bgr8 decoded to RGB: the red byte (time code) lands in channel 0, blue stays 0
        assert np.all(img[..., 2] == 0)
        assert np.all(np.abs(img[:, 0, 0, 0].astype(int) - (t * 10).astype(int) % 256) <= 1)
        assert np.all(img[..., 1] == 0)
        assert list(ep[K.LANGUAGE])[:1] == ["wave"]
    assert store.n_steps + rep.dropped_steps >= 55


def test_rosbag_nearest_policy_and_marker(tmp_path):
    bag = tmp_path / "bag"
    _write_bag(bag, "mcap", gap_at=None, with_marker=True)
    rep = get_converter("rosbag")(str(bag), str(tmp_path / "o.zarr"),
                                  cameras={"front": "/cam/image_raw"},
                                  joint_states="/joint_states", rate=5.0, policy="nearest",
                                  max_age=0.05, marker="/record", progress=False)
    assert rep.check_ok and rep.episodes == 1
    store = TrajectoryStore.open(tmp_path / "o.zarr")
    ep = store.get_episode(0)
    t = store.episode_meta(0)["t_start"]
    assert 0.5 <= t <= 0.52 and len(ep[K.ACTION]) <= 11  # only while /record was true
    # no action topic: action = next state
    np.testing.assert_array_equal(ep[K.ACTION][:-1], ep[K.OBS_STATE][1:])
    assert any("no action topic" in n for n in rep.notes)


def test_rosbag_missing_topic_is_clear(tmp_path):
    bag = tmp_path / "bag"
    _write_bag(bag, "mcap", n_secs=1.0)
    with pytest.raises(KeyError, match="/nope"):
        get_converter("rosbag")(str(bag), str(tmp_path / "o.zarr"), cameras={"front": "/nope"},
                                joint_states="/joint_states", progress=False)


def test_convert_cli(tmp_path, capsys):
    src = tmp_path / "lift.hdf5"
    _robomimic_file(src)
    assert data_main(["convert", "robomimic", str(src), str(tmp_path / "c.zarr"), "--quiet"]) == 0
    assert "wrote 3 episodes" in capsys.readouterr().out
    bag = tmp_path / "bag"
    _write_bag(bag, "mcap", n_secs=2.0, gap_at=None)
    assert data_main(["convert", "rosbag", str(bag), str(tmp_path / "r.zarr"), "--quiet",
                      "--camera", "front=/cam/image_raw", "--joint-states", "/joint_states",
                      "--action", "/arm/command", "--rate", "10"]) == 0
    assert "check OK" in capsys.readouterr().out
    assert data_main(["convert", "nope", str(src), str(tmp_path / "x.zarr")]) == 2
