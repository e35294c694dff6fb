import numpy as np

from robolearn import keys as K
from robolearn.data.stats import STATS_ATTR, get_stats
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store, synthetic_episode, synthetic_meta


def test_stats_values_and_caching(tmp_path):
    store = make_synthetic_store(tmp_path / "s.zarr", [10, 20])
    stats = get_stats(store)
    act = np.concatenate([synthetic_episode(10, 0)[K.ACTION], synthetic_episode(20, 1)[K.ACTION]])
    np.testing.assert_allclose(stats[K.ACTION]["mean"], act.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[K.ACTION]["std"], act.std(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[K.ACTION]["min"], act.min(0))
    np.testing.assert_allclose(stats[K.ACTION]["q99"], np.quantile(act, 0.99, axis=0), rtol=1e-5)
    img = stats[K.image_key("front")]
    assert len(img["mean"]) == 3 and all(0 <= m <= 1 for m in img["mean"])
    assert store.attrs[STATS_ATTR]["n_steps"] == 30  # saved once
    # stale after an append -> recomputed
    store.append_episode(synthetic_episode(5, 2), synthetic_meta(2))
    assert get_stats(store)[K.ACTION]["max"] != stats[K.ACTION]["max"]
    assert store.attrs[STATS_ATTR]["n_steps"] == 35
    store.close()
    assert TrajectoryStore.open(tmp_path / "s.zarr").attrs[STATS_ATTR]["n_episodes"] == 3
