import json

import numpy as np
import pytest
import zarr

from robolearn import keys as K
from robolearn.data.errors import EpisodeValidationError, StoreError, StoreLockedError, StoreVersionError
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store, synthetic_episode, synthetic_meta


def test_roundtrip_unequal_episodes(tmp_path):
    lengths = [23, 40, 7, 31]
    make_synthetic_store(tmp_path / "s.zarr", lengths).close()
    store = TrajectoryStore.open(tmp_path / "s.zarr")
    assert store.n_episodes == 4 and store.n_steps == sum(lengths)
    assert store.episode_lengths.tolist() == lengths
    for i, n in enumerate(lengths):
        want = synthetic_episode(n, i)
        got = store.get_episode(i)
        assert set(got) == set(want)
        for k in want:
            if k in K.TEXT_STEP_KEYS:
                assert list(got[k]) == list(want[k])
            else:
                np.testing.assert_array_equal(got[k], want[k])
        assert store.episode_meta(i) == json.loads(json.dumps(synthetic_meta(i)))


def test_plain_zarr_layout(tmp_path):
    make_synthetic_store(tmp_path / "s.zarr", [5, 6]).close()
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert g["meta/episode_ends"][:].tolist() == [5, 11]
    assert g[f"data/{K.ACTION}"].shape == (11, 8)
    assert g[f"data/{K.image_key('front')}"].chunks[0] == 16  # chunked along time
    assert g.attrs["format_version"] == 1
    assert json.loads(str(g["meta/episode_meta"][1:2][0]))["task"] == "task1"


@pytest.mark.parametrize("mutate,match", [
    (lambda e: e.pop(K.ACTION), "missing required key"),
    (lambda e: e.__setitem__(K.REWARD, e[K.REWARD][:-1]), "same length"),
    (lambda e: e[K.ACTION].__setitem__((3, 1), np.nan), "NaN"),
    (lambda e: e.__setitem__(K.image_key("front"), e[K.image_key("front")].astype(np.float32)), "uint8"),
    (lambda e: e.__setitem__(K.image_key("front"), e[K.image_key("front")][:, :16]), "per-step shape"),
    (lambda e: e.__setitem__(K.OBS_STATE, e[K.OBS_STATE][:, :5]), "per-step shape"),
    (lambda e: e.__setitem__("observation.extra", e[K.REWARD]), "unexpected"),
])
def test_bad_episode_rejected_store_untouched(tmp_path, mutate, match):
    store = make_synthetic_store(tmp_path / "s.zarr", [10, 12])
    before = {k: store.read(k).copy() for k in (K.ACTION, K.OBS_STATE)}
    ep = synthetic_episode(9, 99)
    mutate(ep)
    with pytest.raises(EpisodeValidationError, match=match):
        store.append_episode(ep, synthetic_meta(99))
    store.close()
    store = TrajectoryStore.open(tmp_path / "s.zarr")
    assert store.n_episodes == 2 and store.n_steps == 22
    for k, v in before.items():
        np.testing.assert_array_equal(store.read(k), v)


def test_bad_meta_rejected(tmp_path):
    store = make_synthetic_store(tmp_path / "s.zarr", [4])
    meta = synthetic_meta(1)
    del meta[K.META_FPS]
    with pytest.raises(EpisodeValidationError, match="fps"):
        store.append_episode(synthetic_episode(4, 1), meta)
    assert store.n_episodes == 1


def test_recording_rate_is_one_per_store(tmp_path):
    store = make_synthetic_store(tmp_path / "s.zarr", [4, 5])
    assert store.fps() == synthetic_meta(0)[K.META_FPS]
    meta = synthetic_meta(2)
    meta[K.META_FPS] = 2 * float(meta[K.META_FPS])
    store.append_episode(synthetic_episode(4, 2), meta)  # legal data, but a second rate
    with pytest.raises(ValueError, match="different rates.*policy.fps"):
        store.fps()  # one policy has one action time base: training refuses to guess


def test_action_space_is_the_episodes_own_or_empty_when_mixed(tmp_path):
    store = make_synthetic_store(tmp_path / "s.zarr", [4, 5])
    assert store.action_space() == "joint_pos"
    meta = synthetic_meta(2)
    meta[K.META_ACTION_SPACE] = "ee_delta"
    store.append_episode(synthetic_episode(4, 2), meta)  # a multi-embodiment store
    assert store.action_space() == ""


def test_dtype_cast_and_wrong_dtype(tmp_path):
    store = make_synthetic_store(tmp_path / "s.zarr", [4])
    ep = synthetic_episode(5, 1)
    ep[K.ACTION] = ep[K.ACTION].astype(np.float64)  # same kind: cast on write
    store.append_episode(ep, synthetic_meta(1))
    assert store.read(K.ACTION).dtype == np.float32
    ep = synthetic_episode(5, 2)
    ep[K.ACTION] = ep[K.ACTION].astype(np.int64)
    with pytest.raises(EpisodeValidationError, match="dtype"):
        store.append_episode(ep, synthetic_meta(2))


def test_newer_version_and_foreign_group_refused(tmp_path):
    make_synthetic_store(tmp_path / "s.zarr", [4]).close()
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")
    g.attrs["format_version"] = 99
    with pytest.raises(StoreVersionError, match="upgrade robolearn"):
        TrajectoryStore.open(tmp_path / "s.zarr")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a robolearn trajectory store"):
        TrajectoryStore.open(tmp_path / "other.zarr")
    with pytest.raises(StoreError, match="no store"):
        TrajectoryStore.open(tmp_path / "missing.zarr")


def test_create_refuses_existing(tmp_path):
    make_synthetic_store(tmp_path / "s.zarr", [4]).close()
    with pytest.raises(StoreError, match="already exists"):
        TrajectoryStore.create(tmp_path / "s.zarr")
    assert TrajectoryStore.open(tmp_path / "s.zarr").n_episodes == 1


def test_single_writer_lock_and_readonly(tmp_path):
    w = make_synthetic_store(tmp_path / "s.zarr", [4])
    with pytest.raises(StoreLockedError, match="another process"):
        TrajectoryStore.open(tmp_path / "s.zarr", mode="a")
    r = TrajectoryStore.open(tmp_path / "s.zarr")  # readers are never blocked
    with pytest.raises(StoreError, match="read-only"):
        r.append_episode(synthetic_episode(3, 1), synthetic_meta(1))
    w.close()
    TrajectoryStore.open(tmp_path / "s.zarr", mode="a").close()


def test_reader_refresh_sees_new_episodes_only_when_committed(tmp_path):
    w = make_synthetic_store(tmp_path / "s.zarr", [4])
    r = TrajectoryStore.open(tmp_path / "s.zarr")
    w.append_episode(synthetic_episode(6, 1), synthetic_meta(1))
    assert r.n_episodes == 1
    r.refresh()
    assert r.n_episodes == 2 and r.n_steps == 10


def test_uncommitted_tail_is_invisible_and_overwritten(tmp_path):
    """Simulate each crash point of an append and check readers and the next writer."""
    path = tmp_path / "s.zarr"
    make_synthetic_store(path, [5, 6]).close()
    g = zarr.open_group(str(path), mode="r+")
    # crash after step (1) and (2): data and meta grew, episode_ends did not
    for k in g["data"].array_keys():
        a = g[f"data/{k}"]
        a.resize((20, *a.shape[1:]))
    g["meta/episode_meta"].resize((3,))
    # crash inside step (3): episode_ends grew but its new value was not written (fill 0)
    g["meta/episode_ends"].resize((3,))
    r = TrajectoryStore.open(path)
    assert r.n_episodes == 2 and r.n_steps == 11
    w = TrajectoryStore.open(path, mode="a")
    assert zarr.open_group(str(path), mode="r")["meta/episode_ends"].shape == (2,)
    w.append_episode(synthetic_episode(3, 7), synthetic_meta(7))
    r = TrajectoryStore.open(path)
    assert r.episode_lengths.tolist() == [5, 6, 3]
    np.testing.assert_array_equal(r.get_episode(2)[K.ACTION], synthetic_episode(3, 7)[K.ACTION])
    assert r.array(K.ACTION).shape[0] == 14


def test_text_annotations_single_string_broadcast(tmp_path):
    store = TrajectoryStore.create(tmp_path / "s.zarr")
    ep = synthetic_episode(4, 0, cameras=())
    ep[K.LANGUAGE] = "open the drawer"
    store.append_episode(ep, synthetic_meta(0))
    assert list(store.read(K.LANGUAGE)) == ["open the drawer"] * 4
    ep = synthetic_episode(4, 1, cameras=())
    ep[K.SKILL] = [1, 2, 3, 4]
    with pytest.raises(EpisodeValidationError, match="string"):
        store.append_episode(ep, synthetic_meta(1))


def test_reader_opened_on_empty_store_sees_later_episodes(tmp_path):
    w = TrajectoryStore.create(tmp_path / "s.zarr")
    r = TrajectoryStore.open(tmp_path / "s.zarr")
    assert r.n_episodes == 0 and r.schema is None
    w.append_episode(synthetic_episode(5, 0), synthetic_meta(0))
    r.refresh()
    assert r.n_episodes == 1 and r.schema is not None
    np.testing.assert_array_equal(r.get_episode(0)[K.ACTION], synthetic_episode(5, 0)[K.ACTION])
