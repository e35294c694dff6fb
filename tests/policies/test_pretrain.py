"""Encoder pretraining: inverse dynamics recovers known linear dynamics; baselines train;
the encoder transfers into a policy (fine-tuned or frozen)."""

import pytest
import torch

from robolearn import keys as K
from robolearn.policies.pretrain.config import PretrainConfig
from robolearn.policies.pretrain.model import PretrainModel, load_pretrained_encoder
from robolearn.policies.testing import fit_batch
from tests.policies.conftest import build


def _stats(d):
    s = {"mean": [0.0] * d, "std": [1.0] * d, "min": [-3.0] * d, "max": [3.0] * d,
         "q01": [-3.0] * d, "q99": [3.0] * d}
    return s


def test_inverse_dynamics_recovers_known_linear_dynamics():
    """s' = A s + B a with B of full column rank: a = B^+ (s' - A s) is linear in (s, s'), so
    a linear IDM head on the state fits it exactly."""
    g = torch.Generator().manual_seed(0)
    d, m, n = 6, 3, 512
    A, B = torch.randn(d, d, generator=g) * 0.5, torch.randn(d, m, generator=g)
    s, a = torch.randn(n, d, generator=g), torch.randn(n, m, generator=g)
    s_next = s @ A.T + a @ B.T
    cfg = PretrainConfig(objective="inverse", horizon=1, n_action_steps=1, state_dim=d,
                         action_dim=m, n_layers=0, state_norm="identity",
                         action_norm="identity")
    torch.manual_seed(0)
    model = PretrainModel(cfg, {K.OBS_STATE: _stats(d), K.ACTION: _stats(m)})
    batch = {K.OBS_STATE: s[:, None], K.next_key(K.OBS_STATE): s_next[:, None],
             K.ACTION: a[:, None], K.pad_key(K.ACTION): torch.zeros(n, 1, dtype=torch.bool)}
    assert fit_batch(model, batch, 800, lr=0.05, cosine=True) < 1e-5
    test_s, test_a = torch.randn(8, d, generator=g), torch.randn(8, m, generator=g)
    pred = model.predict_action_chunk({K.OBS_STATE: test_s[:, None],
                                       K.next_key(K.OBS_STATE): (test_s @ A.T + test_a @ B.T)[:, None]})
    assert torch.allclose(pred[:, 0], test_a, atol=1e-2)


@pytest.mark.parametrize("objective", ["inverse", "forward", "bc"])
def test_every_objective_trains_on_image_windows(objective):
    model, ds = build("pretrain", objective=objective)
    batch = ds.batch(8)
    assert K.next_key(K.image_key("front")) in batch
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_the_encoder_transfers_into_bc_fine_tuned_or_frozen(tmp_path):
    pre, _ = build("pretrain")
    pre.save_pretrained(tmp_path / "pre")
    cfg = pre.config
    bc, bds = build("bc", seed=1, image_channels=cfg.image_channels, image_dim=cfg.image_dim)
    n = load_pretrained_encoder(bc, tmp_path / "pre", freeze=True)
    assert n > 0
    for (k, v), (_, w) in zip(bc.obs_encoder.image_encoder.state_dict().items(),
                              pre.obs_encoder.image_encoder.state_dict().items()):
        assert torch.equal(v, w), k
    before = {k: v.clone() for k, v in bc.obs_encoder.image_encoder.state_dict().items()}
    opt = torch.optim.AdamW([p for p in bc.parameters() if p.requires_grad], lr=1e-2)
    loss = bc(bds.batch(8))["loss"]
    loss.backward()
    opt.step()
    for k, v in bc.obs_encoder.image_encoder.state_dict().items():
        assert torch.equal(v, before[k]), f"frozen {k} changed"
    bad, _ = build("bc", image_dim=24)
    with pytest.raises(ValueError, match="does not fit"):
        load_pretrained_encoder(bad, tmp_path / "pre")


def test_the_state_encoder_and_its_input_stats_transfer(tmp_path):
    """With state_encoder_dim > 0 the learned state MLP moves too, and the observation
    statistics it was trained with replace the fine-tuning store's."""
    pre, _ = build("pretrain", state_encoder_dim=8)
    assert pre.obs_encoder.state_encoder is not None
    assert pre.obs_encoder.feature_dim == pre.config.image_dim + 8
    pre.save_pretrained(tmp_path / "pre")
    cfg = pre.config
    bc, _ = build("bc", seed=1, image_channels=cfg.image_channels, image_dim=cfg.image_dim,
                  state_encoder_dim=8)
    key = "observation__state__mean"
    assert not torch.equal(getattr(bc.normalizer, key), getattr(pre.normalizer, key))
    n = load_pretrained_encoder(bc, tmp_path / "pre", freeze=True)
    assert n == (len(pre.obs_encoder.image_encoder.state_dict())
                 + len(pre.obs_encoder.state_encoder.state_dict()))
    for k, v in pre.obs_encoder.state_encoder.state_dict().items():
        assert torch.equal(bc.obs_encoder.state_encoder.state_dict()[k], v), k
    assert not any(p.requires_grad for p in bc.obs_encoder.state_encoder.parameters())
    for stat in ("mean", "std"):
        name = f"observation__state__{stat}"
        assert torch.equal(getattr(bc.normalizer, name), getattr(pre.normalizer, name))
    # the action statistics stay the fine-tuning store's
    assert not torch.equal(bc.normalizer.action__min, pre.normalizer.action__min)
    plain, _ = build("bc", image_channels=cfg.image_channels, image_dim=cfg.image_dim)
    with pytest.raises(ValueError, match="state_encoder_dim"):
        load_pretrained_encoder(plain, tmp_path / "pre")


def test_init_from_copies_a_whole_policy_and_refuses_another_type(tmp_path):
    from robolearn.policies.base import init_from_checkpoint

    src, _ = build("iql", seed=0)
    src.save_pretrained(tmp_path / "iql")
    dst, _ = build("iql", seed=1)
    assert init_from_checkpoint(dst, tmp_path / "iql") == len(dst.state_dict())
    for (k, v), (_, w) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert torch.equal(v, w), k
    bc, _ = build("bc")
    with pytest.raises(ValueError, match="holds a iql policy; init_from needs a bc"):
        init_from_checkpoint(bc, tmp_path / "iql")
    wide, _ = build("iql", hidden_dim=48)
    with pytest.raises(ValueError, match="does not fit"):
        init_from_checkpoint(wide, tmp_path / "iql")


def test_flow_vla_takes_the_pretrained_state_encoder(tmp_path):
    """The flow policy fine-tunes with a pretrained state encoder (state_encoder_dim > 0)
    in front of its state token; it refuses an image encoder it cannot use."""
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.testing import synthetic_policy

    pcfg = PretrainConfig.tiny()
    pcfg.state_encoder_dim = 8
    pre, _ = synthetic_policy("pretrain", pcfg, cameras=(), seed=0, action_dim=6)
    pre.save_pretrained(tmp_path / "pre")
    fcfg = FlowVLAConfig.tiny()
    fcfg.state_encoder_dim = 8
    vla, ds = synthetic_policy("flow_vla", fcfg, cameras=(), seed=1, action_dim=6)  # 15-D state

    assert load_pretrained_encoder(vla, tmp_path / "pre", freeze=True) == len(
        pre.obs_encoder.state_encoder.state_dict())
    for k, v in pre.obs_encoder.state_encoder.state_dict().items():
        assert torch.equal(vla.state_encoder.state_dict()[k], v), k
    assert torch.equal(vla.normalizer.observation__state__mean, pre.normalizer.observation__state__mean)
    # the encoder shapes the state token: fine-tuning trains the rest, the frozen MLP stays
    before = {k: v.clone() for k, v in vla.state_encoder.state_dict().items()}
    assert fit_batch(vla, ds.batch(8), 20, lr=3e-3) < float("inf")
    assert all(torch.equal(v, before[k]) for k, v in vla.state_encoder.state_dict().items())
    assert vla.predict_action_chunk(ds.batch(2)).shape == (2, fcfg.horizon, fcfg.action_dim)
    img_pre, _ = build("pretrain", state_encoder_dim=8)
    img_pre.save_pretrained(tmp_path / "img")
    with pytest.raises(ValueError, match="flow_vla takes only a state encoder"):
        load_pretrained_encoder(vla, tmp_path / "img")
