import pytest
import torch

from robolearn import keys as K
from robolearn.policies.normalize import Normalizer

STATS = {K.ACTION: {"mean": [1.0, -2.0], "std": [2.0, 0.5], "min": [-1.0, -4.0], "max": [3.0, 0.0]},
         K.image_key("front"): {"mean": [0.5] * 3, "std": [0.25] * 3, "min": [0.0] * 3,
                                "max": [1.0] * 3}}


@pytest.mark.parametrize("mode", ["mean_std", "min_max", "identity"])
def test_round_trip(mode):
    n = Normalizer({K.ACTION: mode}, {K.ACTION: 2}, STATS)
    x = torch.randn(4, 3, 2) * 3
    assert torch.allclose(n.unnormalize(K.ACTION, n.normalize(K.ACTION, x)), x, atol=1e-5)


def test_min_max_maps_to_unit_interval_and_images_use_channel_stats():
    n = Normalizer({K.ACTION: "min_max", K.image_key("front"): "mean_std"},
                   {K.ACTION: 2, K.image_key("front"): 3}, STATS)
    y = n.normalize(K.ACTION, torch.tensor([[-1.0, -4.0], [3.0, 0.0]]))
    assert torch.allclose(y, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    img = torch.full((2, 1, 3, 4, 4), 255, dtype=torch.uint8)
    assert torch.allclose(n.normalize(K.image_key("front"), img), torch.tensor(2.0), atol=1e-5)


def test_stats_are_buffers_in_the_state_dict_and_dims_are_checked():
    n = Normalizer({K.ACTION: "mean_std"}, {K.ACTION: 2}, STATS)
    assert any("mean" in k for k in n.state_dict())
    with pytest.raises(ValueError, match="expects 3"):
        Normalizer({K.ACTION: "mean_std"}, {K.ACTION: 3}, STATS)
    with pytest.raises(ValueError, match="not one of"):
        Normalizer({K.ACTION: "zscore"}, {K.ACTION: 2}, STATS)


@pytest.mark.parametrize("mode", ["mean_std", "min_max"])
def test_a_feature_constant_in_the_data_is_shifted_not_blown_up(mode):
    """A gripper that read exactly 0 in every demo must not turn a deployed reading of 1e-5
    into a huge input (the std/range floor), and round trips still hold."""
    stats = {K.OBS_STATE: {"mean": [0.3, 0.0], "std": [0.2, 1e-9], "min": [0.0, 0.0],
                           "max": [1.0, 1e-9]}}
    n = Normalizer({K.OBS_STATE: mode}, {K.OBS_STATE: 2}, stats)
    y = n.normalize(K.OBS_STATE, torch.tensor([[0.5, 1e-5]]))
    assert y[0, 1].abs() < 2.0  # scale 1: only shifted
    x = torch.tensor([[0.7, 0.02]])
    assert torch.allclose(n.unnormalize(K.OBS_STATE, n.normalize(K.OBS_STATE, x)), x, atol=1e-6)


def test_a_feature_that_barely_varied_is_divided_by_the_floor():
    """The EE orientation of a top-down expert varies ~1e-3 in the demos: a 0.01 drift in a
    rollout must stay a ~1-sigma input under the floor (it is 14 sigma without), while
    features that varied more than the floor keep their own std."""
    stats = {K.OBS_STATE: {"mean": [0.3, 0.0], "std": [0.2, 7e-4], "min": [0.0, -2e-3],
                           "max": [1.0, 2e-3]}}
    x = torch.tensor([[0.5, 0.01]])
    raw = Normalizer({K.OBS_STATE: "mean_std"}, {K.OBS_STATE: 2}, stats)
    floored = Normalizer({K.OBS_STATE: "mean_std"}, {K.OBS_STATE: 2}, stats,
                         floors={K.OBS_STATE: 0.01})
    assert raw.normalize(K.OBS_STATE, x)[0, 1] == pytest.approx(0.01 / 7e-4, rel=1e-4)
    y = floored.normalize(K.OBS_STATE, x)
    assert y[0, 1] == pytest.approx(1.0, rel=1e-4)
    assert y[0, 0] == pytest.approx(1.0, rel=1e-4)  # (0.5 - 0.3) / 0.2: untouched
    assert torch.allclose(floored.unnormalize(K.OBS_STATE, y), x, atol=1e-6)


def _tiny_bc():
    """A tiny bc whose second state feature varied 1e-3 in its (made-up) data."""
    from robolearn.policies.bc.config import BCConfig
    from robolearn.policies.bc.model import BCPolicy

    stats = {K.OBS_STATE: {"mean": [0.0, 0.0], "std": [1.0, 1e-3], "min": [-1, -1e-3],
                           "max": [1, 1e-3]},
             K.ACTION: {"mean": [0.0], "std": [1.0], "min": [-1.0], "max": [1.0]}}
    cfg = BCConfig.tiny()
    cfg.resolve_features(stats, image_keys=[])
    return BCPolicy(cfg, stats)


def test_policies_floor_the_state_scale_by_default():
    pol = _tiny_bc()
    y = pol.normalizer.normalize(K.OBS_STATE, torch.tensor([[0.0, 0.01]]))
    assert y[0, 1] == pytest.approx(0.01 / pol.config.state_scale_floor, rel=1e-4)


def test_a_checkpoint_from_before_the_floor_keeps_its_scales(tmp_path):
    import json

    from robolearn.policies.base import CONFIG_FILE, load_policy

    pol = _tiny_bc()
    pol.save_pretrained(tmp_path)
    assert load_policy(tmp_path).config.state_scale_floor == pol.config.state_scale_floor
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    del meta["config"]["state_scale_floor"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    old = load_policy(tmp_path)
    assert old.config.state_scale_floor == 0.0
    y = old.normalizer.normalize(K.OBS_STATE, torch.tensor([[0.0, 0.01]]))
    assert y[0, 1] == pytest.approx(10.0, rel=1e-4)
