import numpy as np
import pytest
import torch

from robolearn import keys as K
from robolearn.data.dataset import WindowDataset, make_dataloader
from robolearn.data.sampler import WindowIndex, block_shuffle_order, split_episodes
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store, synthetic_episode

LENGTHS = [23, 40, 7, 31]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("s") / "s.zarr"
    make_synthetic_store(p, LENGTHS).close()
    return str(p)


def test_window_index_padding_unequal_episodes():
    ends = np.cumsum(LENGTHS)
    idx = WindowIndex(ends, n_obs=3, horizon=10)
    assert len(idx) == sum(LENGTHS)
    # first step of episode 2 (length 7, starts at 63): obs pads before, actions pad after
    i = int(np.flatnonzero(idx.anchors == 63)[0])
    w = idx.windows([i])
    assert w.obs[0].tolist() == [63, 63, 63] and w.obs_pad[0].tolist() == [True, True, False]
    assert w.act[0].tolist() == list(range(63, 70)) + [69, 69, 69]
    assert w.act_pad[0].tolist() == [False] * 7 + [True] * 3
    # windows never leave their episode
    all_w = idx.windows(np.arange(len(idx)))
    starts = np.concatenate([[0], ends[:-1]])
    ep = all_w.episode
    assert (all_w.obs >= starts[ep, None]).all() and (all_w.act < ends[ep, None]).all()
    # unpadded steps are exactly consecutive
    assert np.all(np.diff(all_w.act, axis=1)[~all_w.act_pad[:, 1:]] == 1)


def test_episode_subset_and_split():
    tr, va = split_episodes(10, 0.2, seed=3)
    assert len(va) == 2 and set(tr).isdisjoint(va) and len(tr) + len(va) == 10
    tr2, va2 = split_episodes(10, 0.2, seed=3)
    assert tr.tolist() == tr2.tolist()
    assert len(split_episodes(3, 0.05)[1]) == 1  # at least one val episode
    idx = WindowIndex(np.cumsum(LENGTHS), 2, 4, episodes=[1, 3])
    assert len(idx) == 40 + 31 and set(idx.anchor_episode) == {1, 3}


def test_block_shuffle_is_permutation_and_chunk_local():
    anchors = np.arange(1000)
    order = block_shuffle_order(anchors, chunk_steps=32, blocks_in_flight=2,
                                rng=np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(1000))
    blocks = anchors[order] // 32
    # consecutive groups of 64 samples touch at most 2 chunks
    for g in range(0, 1000 - 64, 64):
        assert len(set(blocks[g:g + 64])) <= 3


@pytest.mark.parametrize("budget_mb", [4096.0, 0.05])  # in RAM / chunk cache
def test_dataset_values_match_episodes(store_path, budget_mb):
    ds = WindowDataset(store_path, n_obs=2, horizon=8, memory_budget_mb=budget_mb)
    assert ds.source.mode == ("memory" if budget_mb > 1 else "chunk-cache")
    eps = [synthetic_episode(n, i) for i, n in enumerate(LENGTHS)]
    rng = np.random.default_rng(0)
    ids = rng.choice(len(ds), 50, replace=False)
    b = ds.__getitems__(ids)
    assert b[K.image_key("front")].shape == (50, 2, 3, 32, 32)
    assert b[K.image_key("front")].dtype == torch.uint8
    for j, i in enumerate(ids):
        ep, t = int(b["episode_index"][j]), int(b["index"][j])
        t_local = t - int(np.cumsum([0] + LENGTHS)[ep])
        want = eps[ep]
        a_idx = np.clip(np.arange(t_local, t_local + 8), 0, LENGTHS[ep] - 1)
        o_idx = np.clip(np.arange(t_local - 1, t_local + 1), 0, LENGTHS[ep] - 1)
        np.testing.assert_array_equal(b[K.ACTION][j].numpy(), want[K.ACTION][a_idx])
        np.testing.assert_array_equal(b[K.OBS_STATE][j].numpy(), want[K.OBS_STATE][o_idx])
        np.testing.assert_array_equal(b[K.image_key("wrist")][j].numpy(),
                                      want[K.image_key("wrist")][o_idx].transpose(0, 3, 1, 2))
        assert b[K.pad_key(K.ACTION)][j].sum().item() == max(0, t_local + 8 - LENGTHS[ep])
        assert b[K.SKILL][j] == want[K.SKILL][t_local]


def test_dataloader_with_spawned_workers(store_path):
    ds = WindowDataset(store_path, n_obs=2, horizon=4, memory_budget_mb=0.05)
    dl = make_dataloader(ds, batch_size=16, shuffle=True, num_workers=2, seed=1)
    seen = []
    for b in dl:
        seen.extend(b["index"].tolist())
        assert b[K.ACTION].shape[1:] == (4, 8)
    assert sorted(seen) == sorted(ds.index.anchors.tolist())  # one epoch = every anchor once


def test_unknown_camera_is_a_clear_error(store_path):
    with pytest.raises(KeyError, match="not in"):
        WindowDataset(store_path, image_keys=[K.image_key("side")])


def test_future_window_is_k_steps_ahead_and_flags_episode_end(store_path):
    k = 5
    ds = WindowDataset(store_path, n_obs=2, horizon=4, future_offset=k)
    eps = [synthetic_episode(n, i) for i, n in enumerate(LENGTHS)]
    b = ds.__getitems__(np.arange(len(ds)))
    offs = np.cumsum([0] + LENGTHS)
    for j in range(len(ds)):
        ep, t = int(b["episode_index"][j]), int(b["index"][j])
        t_local, n = t - int(offs[ep]), LENGTHS[ep]
        f = min(t_local + k, n - 1)
        o_idx = np.clip(np.arange(f - 1, f + 1), 0, n - 1)
        np.testing.assert_array_equal(b[K.next_key(K.OBS_STATE)][j].numpy(),
                                      eps[ep][K.OBS_STATE][o_idx])
        np.testing.assert_array_equal(b[K.next_key(K.image_key("front"))][j].numpy(),
                                      eps[ep][K.image_key("front")][o_idx].transpose(0, 3, 1, 2))
        assert bool(b[K.NEXT_DONE][j]) == (t_local + k > n - 1)
        assert b[K.pad_key(K.next_key(K.OBS_STATE))][j].tolist() == [f - 1 < 0, False]
    with pytest.raises(ValueError, match="future_offset"):
        WindowDataset(store_path, future_offset=-1)
