"""flow_vla specifics: KV-cache reuse is exact, padded action dims, language conditioning."""

import torch

from robolearn import keys as K
from robolearn.policies.flow_vla.model import ACTION_DIM_MASK, sincos_time_embedding
from robolearn.policies.tokenizer import ByteTokenizer
from tests.policies.conftest import build


def test_kv_cache_inference_equals_recomputing_the_prefix():
    policy, ds = build("flow_vla")
    policy.eval()
    batch = ds.batch(3)
    c = policy.config
    noise = torch.randn(3, c.horizon, c.max_action_dim)
    cached = policy.predict_action_chunk(batch, noise=noise, use_kv_cache=True)
    recomputed = policy.predict_action_chunk(batch, noise=noise, use_kv_cache=False)
    assert torch.allclose(cached, recomputed, atol=1e-5, rtol=1e-5)
    # and the cache really is reused: the prefix LM runs once instead of num_steps times
    calls = []
    hook = policy.lm.register_forward_hook(lambda *a: calls.append(1))
    policy.predict_action_chunk(batch, noise=noise, use_kv_cache=True)
    assert len(calls) == 1
    policy.predict_action_chunk(batch, noise=noise, use_kv_cache=False)
    assert len(calls) == 1 + c.num_steps
    hook.remove()


def test_padded_action_dims_are_masked_out_of_the_loss():
    policy, ds = build("flow_vla")
    batch = ds.batch(4)
    c = policy.config
    # a second "arm" with 1 action dim in the same batch: its second dim must not count
    mask = torch.zeros(4, c.max_action_dim, dtype=torch.bool)
    mask[:, : c.action_dim] = True
    mask[2:, 1:] = False
    batch[ACTION_DIM_MASK] = mask
    torch.manual_seed(0)
    ref = policy(batch)["loss"]
    alt = dict(batch)
    a = batch[K.ACTION].clone()
    a[2:, :, 1] += 50.0
    alt[K.ACTION] = a
    torch.manual_seed(0)
    assert torch.allclose(policy(alt)["loss"], ref, atol=1e-6)
    assert c.action_dim < c.max_action_dim


def test_instruction_conditions_the_actions():
    policy, ds = build("flow_vla")
    policy.eval()
    batch = ds.batch(2)
    noise = torch.randn(2, policy.config.horizon, policy.config.max_action_dim)
    a = policy.predict_action_chunk({**batch, K.LANGUAGE: ["pick up the red cube"] * 2}, noise=noise)
    b = policy.predict_action_chunk({**batch, K.LANGUAGE: ["open the drawer"] * 2}, noise=noise)
    assert not torch.allclose(a, b)


def test_training_on_instructions_longer_than_the_text_slots_warns_once(caplog):
    policy, ds = build("flow_vla")  # tiny: max_text_tokens=12, i.e. 10 bytes of text
    policy.train()
    batch = ds.batch(2)
    with caplog.at_level("WARNING", logger="robolearn.policies.flow_vla.model"):
        policy({**batch, K.LANGUAGE: ["go", "reach"]})
        assert not caplog.records  # short instructions fit
        policy({**batch, K.LANGUAGE: ["go", "put the red block in the bowl"]})
        policy({**batch, K.LANGUAGE: ["put the red block on the pad"] * 2})
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "put the red block in the bowl" in msg and "policy.max_text_tokens=12" in msg


def test_byte_tokenizer_round_trips_and_pads():
    tok = ByteTokenizer()
    ids, mask = tok(["héllo", ""], max_length=10)
    assert ids.shape == (2, 10) and mask[0].sum() == len("héllo".encode()) + 2
    assert tok.decode(ids[0].tolist()) == "héllo"
    assert mask[1].sum() == 2  # BOS + EOS only


def test_time_embedding_distinguishes_times():
    e = sincos_time_embedding(torch.tensor([0.0, 0.5, 1.0]), 16)
    assert e.shape == (3, 16) and not torch.allclose(e[0], e[1])


def test_gemma_backbone_builds_and_its_kv_cache_is_exact():
    policy, ds = build("flow_vla", lm_type="gemma")
    assert type(policy.lm).__name__ == "GemmaModel"
    policy.eval()
    batch = ds.batch(2)
    noise = torch.randn(2, policy.config.horizon, policy.config.max_action_dim)
    a = policy.predict_action_chunk(batch, noise=noise, use_kv_cache=True)
    b = policy.predict_action_chunk(batch, noise=noise, use_kv_cache=False)
    assert torch.allclose(a, b, atol=1e-5)


def test_backbones_load_pretrained_weights_from_a_local_folder(tmp_path):
    """A user's SigLIP / Llama-class weights (here: random ones saved to disk) are used as is."""
    src, ds = build("flow_vla")
    src.vision.model.save_pretrained(tmp_path / "vision")
    src.lm.save_pretrained(tmp_path / "lm")
    policy, _ = build("flow_vla", seed=1, vision_pretrained_path=str(tmp_path / "vision"),
                      lm_pretrained_path=str(tmp_path / "lm"))
    for mod in ("vision", "lm"):
        a, b = getattr(src, mod).state_dict(), getattr(policy, mod).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), mod
    assert not torch.equal(src.action_out.weight, policy.action_out.weight)  # rest: fresh init
    assert torch.isfinite(policy(ds.batch(2))["loss"])
    # the checkpoint is self-contained: it loads after the pretrained folders are gone
    policy.save_pretrained(tmp_path / "ckpt")
    import shutil

    shutil.rmtree(tmp_path / "vision")
    shutil.rmtree(tmp_path / "lm")
    from robolearn.policies import load_policy

    loaded = load_policy(tmp_path / "ckpt")
    policy.eval()
    noise = torch.randn(2, policy.config.horizon, policy.config.max_action_dim)
    batch = ds.batch(2)
    assert torch.equal(loaded.predict_action_chunk(batch, noise=noise),
                       policy.predict_action_chunk(batch, noise=noise))


def test_conv_vision_encoder_variant_learns_and_caches_exactly():
    policy, ds = build("flow_vla", vision_type="conv", conv_channels=[8, 16])
    assert type(policy.vision).__name__ == "ConvImageEncoder"
    batch = ds.batch(4)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        torch.manual_seed(0)
        loss = policy(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    policy.eval()
    noise = torch.randn(4, policy.config.horizon, policy.config.max_action_dim)
    assert torch.allclose(policy.predict_action_chunk(batch, noise=noise),
                          policy.predict_action_chunk(batch, noise=noise, use_kv_cache=False),
                          atol=1e-5)


def test_conv_keypoint_tokens_and_image_positions_join_the_prefix_and_learn():
    import pytest

    policy, ds = build("flow_vla", vision_type="conv", conv_channels=[8, 16],
                       image_keypoints=True, image_pos_embed=True)
    c, v = policy.config, policy.vision
    batch = ds.batch(2)
    plain, _ = build("flow_vla", vision_type="conv", conv_channels=[8, 16])
    emb, mask = policy.embed_prefix(batch)
    emb0, _ = plain.embed_prefix(batch)
    # one keypoint token more per camera, the cells keep their count
    assert emb.shape[1] - emb0.shape[1] == len(c.image_keys)
    loss = policy(batch)["loss"]
    loss.backward()
    assert policy.image_pos.grad.abs().sum() > 0
    assert policy.keypoint_proj.weight.grad.abs().sum() > 0
    # the same image content at another place moves the keypoint token
    policy.eval()
    img = batch[c.image_keys[0]].clone()
    kp_a = policy.embed_prefix(batch)[0][:, v.n_tokens]
    batch[c.image_keys[0]] = torch.roll(img, shifts=(3, 3), dims=(-2, -1))
    kp_b = policy.embed_prefix(batch)[0][:, v.n_tokens]
    assert not torch.allclose(kp_a, kp_b, atol=1e-4)
    with pytest.raises(ValueError, match="image_keypoints needs vision_type=conv"):
        build("flow_vla", image_keypoints=True)


def _scene_setup(**overrides):
    """A tiny flow_vla config + batch whose "scene" (a random colour offset per sample, added
    to its images) only the camera sees: the synthetic images otherwise follow the state,
    which the scene head also reads."""
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.testing import dataset_for

    cfg = FlowVLAConfig.tiny()
    cfg.scene_aux_weight = 1.0
    for k, v in overrides.items():
        setattr(cfg, k, v)
    ds = dataset_for(cfg, n_episodes=4)
    stats = ds.stats()
    batch = ds.batch(8)
    key = cfg.image_keys[0] if cfg.image_keys else ds.image_keys[0]
    offset = torch.randint(0, 80, (8, 1, 3, 1, 1), generator=torch.Generator().manual_seed(1))
    for k in ds.image_keys:
        batch[k] = (batch[k].int() + offset).clamp(0, 255).to(torch.uint8)
    scene = offset[:, :, :, 0, 0].float().expand(-1, batch[key].shape[1], -1) / 80.0
    batch[K.OBS_ENV_STATE] = scene
    flat = scene.reshape(-1, 3).numpy()
    no_scene = dict(stats)
    stats[K.OBS_ENV_STATE] = {"mean": flat.mean(0).tolist(), "std": (flat.std(0) + 1e-3).tolist()}
    return cfg, ds, stats, no_scene, batch


def test_scene_aux_loss_teaches_the_image_encoder_and_stays_out_of_inference():
    """scene_aux_weight: a head on the pooled cameras + state regresses the scene state (a
    function of the image here); it learns, it adds to the loss, and inference does not
    need the scene state. Without it in the stats the config names the collector flag."""
    import pytest

    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, no_scene, batch = _scene_setup()
    with pytest.raises(ValueError, match="robolearn-collect --scene-state"):
        FlowVLAConfig(**{**cfg.to_dict()}).resolve_features(no_scene, ds.image_keys)
    cfg.resolve_features(stats, ds.image_keys)
    assert cfg.scene_state_dim == 3
    torch.manual_seed(0)
    policy = FlowVLAPolicy(cfg, stats)
    plain_len = policy.embed_prefix(batch)[0].shape[1]
    aux = {}  # the scene loss alone reaches the image encoder
    assert policy.embed_prefix(batch, aux)[0].shape[1] == plain_len  # no token without scene_token
    policy._scene_loss(batch, aux["scene"]).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.vision.parameters())
    policy.zero_grad()
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        out = policy(batch)
        first = first if first is not None else out["scene_loss"].item()
        assert torch.allclose(out["loss"], out["flow_loss"] + out["scene_loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["scene_loss"].item() < 0.5 * first
    policy.eval()
    obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE}
    assert policy.predict_action_chunk(obs).shape == (8, cfg.horizon, cfg.action_dim)
    with pytest.raises(KeyError, match="--scene-state"):
        policy.train()
        policy(obs)


def test_scene_token_feeds_the_estimate_but_only_the_aux_loss_trains_it(tmp_path):
    """scene_token: the scene head's estimate is one more prefix token at training and at
    inference (from the cameras alone); the action loss reaches the token's projection,
    never the head; the policy survives a save/load; the option needs the aux loss."""
    import pytest

    from robolearn.policies.base import load_policy
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, _, batch = _scene_setup(scene_token=True)
    cfg.resolve_features(stats, ds.image_keys)
    torch.manual_seed(0)
    policy = FlowVLAPolicy(cfg, stats)
    plain = FlowVLAPolicy(FlowVLAConfig(**{**cfg.to_dict(), "scene_token": False}), stats)
    assert policy.embed_prefix(batch)[0].shape[1] == plain.embed_prefix(batch)[0].shape[1] + 1
    cfg.scene_aux_weight = 0.0  # the action loss alone (the head stays built)
    policy(batch)["loss"].backward()
    assert policy.scene_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in policy.scene_head.parameters())
    policy.zero_grad()
    cfg.scene_aux_weight = 1.0
    policy(batch)["loss"].backward()
    assert policy.scene_head[0].weight.grad.abs().sum() > 0
    # inference: the token comes from the cameras, so another image content moves it
    policy.eval()
    obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE}
    tok = len(cfg.image_keys) * policy.vision.n_tokens  # right after the image tokens
    a = policy.embed_prefix(obs)[0][:, tok]
    key = cfg.image_keys[0]
    moved = dict(obs, **{key: (obs[key].int() + 40).clamp(0, 255).to(torch.uint8)})
    assert not torch.allclose(a, policy.embed_prefix(moved)[0][:, tok], atol=1e-5)
    policy.save_pretrained(tmp_path / "p")
    again = load_policy(tmp_path / "p")
    again.eval()
    torch.manual_seed(3)
    x = policy.predict_action_chunk(obs)
    torch.manual_seed(3)
    assert torch.allclose(again.predict_action_chunk(obs), x, atol=1e-5)
    with pytest.raises(ValueError, match="set scene_aux_weight > 0"):
        FlowVLAConfig(**{**cfg.to_dict(), "scene_aux_weight": 0.0}).validate()


def test_perception_only_trains_the_encoder_and_scene_head_alone(tmp_path):
    """perception_only (train/flow_vla_perception): the loss is the scene loss alone, it
    reaches the image encoder and the head but not the LM or the expert, it falls; a
    policy run then starts from it (init_from) with its encoder and head; the option
    needs the aux loss."""
    import pytest

    from robolearn.policies.base import init_from_checkpoint
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, _, batch = _scene_setup(perception_only=True)
    cfg.resolve_features(stats, ds.image_keys)
    torch.manual_seed(0)
    policy = FlowVLAPolicy(cfg, stats)
    out = policy(batch)
    assert set(out) == {"loss", "scene_loss"}
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.vision.parameters())
    assert policy.scene_head[0].weight.grad.abs().sum() > 0
    for part in (policy.lm, policy.expert, policy.action_out, policy.image_proj):
        assert all(p.grad is None for p in part.parameters())
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.grad is not None], lr=3e-3)
    first = out["loss"].item()
    policy.eval()
    err_first = policy.val_metrics(batch)["scene_err_cm"]
    policy.train()
    for _ in range(30):
        loss = policy(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    # val_metrics: the head's mean error per object position, in cm of the scene's units
    policy.eval()
    with torch.no_grad():
        est = policy.scene_norm.unnormalize(K.OBS_ENV_STATE, policy.scene_estimate(batch))
    want = 100 * (est - batch[K.OBS_ENV_STATE][:, -1]).norm(dim=-1).mean()
    err = policy.val_metrics(batch)["scene_err_cm"]
    assert err == pytest.approx(float(want), rel=1e-5) and err < 0.75 * err_first
    policy.train()
    policy.save_pretrained(tmp_path / "perception")
    nxt = FlowVLAConfig(**{**cfg.to_dict(), "perception_only": False, "scene_token": True})
    student = FlowVLAPolicy(nxt, stats)
    init_from_checkpoint(student, tmp_path / "perception")
    student.eval(), policy.eval()
    obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE}
    assert torch.allclose(student.scene_estimate(obs), policy.scene_estimate(obs), atol=1e-6)
    assert set(student(batch)) == {"loss", "flow_loss", "scene_loss"}
    with pytest.raises(ValueError, match="perception_only .* set scene_aux_weight > 0"):
        FlowVLAConfig(**{**cfg.to_dict(), "scene_aux_weight": 0.0}).validate()


def test_frozen_perception_and_scene_only_cameras(tmp_path):
    """freeze_vision keeps the encoder + head of the perception stage exactly (they get no
    gradient, the scene loss is only reported); camera_tokens=false drops the image tokens
    from the prefix yet the cameras still steer the actions through the scene token; a
    frozen head that init_from cannot fill, or cameras with no way in, are refused."""
    import pytest

    from robolearn.policies.base import init_from_checkpoint, load_policy
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, _, batch = _scene_setup(perception_only=True)
    cfg.resolve_features(stats, ds.image_keys)
    torch.manual_seed(0)
    FlowVLAPolicy(cfg, stats).save_pretrained(tmp_path / "perception")
    perception = load_policy(tmp_path / "perception")
    sizes = {}
    for tokens in (True, False):
        nxt = FlowVLAConfig(**{**cfg.to_dict(), "perception_only": False, "scene_token": True,
                               "freeze_vision": True, "camera_tokens": tokens})
        torch.manual_seed(1)
        policy = FlowVLAPolicy(nxt, stats)
        init_from_checkpoint(policy, tmp_path / "perception")
        frozen = {k: v.clone() for k, v in policy.state_dict().items()
                  if k.startswith(("vision.", "scene_head."))}
        lm = [p.clone() for p in policy.lm.parameters()]
        opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(3):
            out = policy(batch)
            assert out["loss"].item() == pytest.approx(out["flow_loss"].item())
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        assert all(p.grad is None for p in policy.vision.parameters())
        assert all(p.grad is None for p in policy.scene_head.parameters())
        after = policy.state_dict()
        assert all(torch.equal(after[k], v) for k, v in frozen.items())
        assert any(not torch.equal(a, b) for a, b in zip(lm, policy.lm.parameters()))
        policy.eval(), perception.eval()
        obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE}
        assert torch.allclose(policy.scene_estimate(obs), perception.scene_estimate(obs))
        sizes[tokens] = policy.embed_prefix(obs)[0].shape[1]
        if not tokens:
            assert policy.image_proj is None
            noise = torch.randn(8, nxt.horizon, nxt.max_action_dim)
            a = policy.predict_action_chunk(obs, noise=noise)
            shifted = {**obs, **{k: (obs[k].int() + 60).clamp(0, 255).to(torch.uint8)
                                 for k in ds.image_keys}}
            assert not torch.allclose(a, policy.predict_action_chunk(shifted, noise=noise))
    n_img = len(ds.image_keys) * perception.vision.n_tokens
    assert sizes[True] - sizes[False] == n_img
    # a frozen head must come from somewhere: a source without one is refused
    plain = FlowVLAConfig(**{**cfg.to_dict(), "perception_only": False,
                             "scene_aux_weight": 0.0, "scene_state_dim": 0})
    FlowVLAPolicy(plain, stats).save_pretrained(tmp_path / "plain")
    frozen_cfg = FlowVLAConfig(**{**cfg.to_dict(), "perception_only": False,
                                  "scene_token": True, "freeze_vision": True})
    with pytest.raises(ValueError, match="keeps frozen: they would stay at their random init"):
        init_from_checkpoint(FlowVLAPolicy(frozen_cfg, stats), tmp_path / "plain")
    with pytest.raises(ValueError, match="freeze_vision keeps fixed: nothing would train"):
        FlowVLAConfig(**{**cfg.to_dict(), "freeze_vision": True}).validate()
    assert frozen_cfg.start_requirement() and "policy.init_from" in \
        frozen_cfg.start_requirement()
    frozen_cfg.init_from = str(tmp_path / "perception")
    assert frozen_cfg.start_requirement() is None
    with pytest.raises(ValueError, match="camera_tokens=false .* set scene_token=true"):
        FlowVLAConfig(**{**cfg.to_dict(), "perception_only": False,
                         "camera_tokens": False}).validate()


def test_scene_token_teacher_trains_on_recorded_positions_and_infers_from_the_head():
    """scene_token_teacher: while training, the scene token is the recorded object state
    (so the actions follow it, whatever the head says); in eval mode it is the head's
    estimate from the cameras; the option needs scene_token."""
    import pytest

    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, _, batch = _scene_setup(scene_token=True, scene_token_teacher=True,
                                            camera_tokens=False)
    cfg.resolve_features(stats, ds.image_keys)
    torch.manual_seed(0)
    policy = FlowVLAPolicy(cfg, stats)
    obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE}
    token = lambda o: policy.embed_prefix(o)[0][:, -cfg.max_text_tokens - 2]  # noqa: E731
    policy.train()
    true = policy._true_scene(batch)
    assert torch.allclose(token(batch), policy.scene_proj(true))
    moved = {**batch, K.OBS_ENV_STATE: batch[K.OBS_ENV_STATE] + 1.0}
    assert not torch.allclose(token(moved), token(batch))
    with pytest.raises(KeyError, match="--scene-state"):
        token(obs)  # training needs the recorded state
    policy.eval()
    assert torch.allclose(token(obs), policy.scene_proj(policy.scene_estimate(obs)))
    assert torch.allclose(token(moved), token(obs))  # inference never reads it
    with pytest.raises(ValueError, match="scene_token_teacher .* set scene_token=true"):
        FlowVLAConfig(**{**cfg.to_dict(), "scene_token": False}).validate()


def test_scene_token_ee_adds_the_objects_offsets_from_the_end_effector():
    """scene_token_ee=i (0 in the tiny 3-D state): the token's input is the normalised scene + every object's xyz
    minus state[i:i+3], in decimetres; moving only the end effector moves the token; the
    index must fit the state and needs scene_token."""
    import pytest

    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, _, batch = _scene_setup(scene_token=True, scene_token_ee=0)
    cfg.resolve_features(stats, ds.image_keys)
    torch.manual_seed(0)
    policy = FlowVLAPolicy(cfg, stats).eval()
    scene = torch.tensor([[0.1, 0.2, 0.3]])  # raw: one object's xyz (3-D scene here)
    norm = policy.scene_norm.normalize(K.OBS_ENV_STATE, scene)
    state = torch.zeros(1, cfg.state_dim)
    state[0, 0:3] = torch.tensor([0.1, 0.0, 0.25])
    got = policy._scene_token_input({K.OBS_STATE: state}, norm)
    assert got.shape == (1, 6)
    assert torch.allclose(got[:, :3], norm)
    assert torch.allclose(got[:, 3:], torch.tensor([[0.0, 2.0, 0.5]]), atol=1e-5)
    obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE}
    tok = lambda o: policy.embed_prefix(o)[0][:, -cfg.max_text_tokens - 2]  # noqa: E731
    st = obs[K.OBS_STATE].clone()
    st[..., 1] += 0.5  # the end effector's y
    assert not torch.allclose(tok(obs), tok({**obs, K.OBS_STATE: st}))
    with pytest.raises(ValueError, match="scene_token_ee=.*run past"):
        FlowVLAConfig(**{**cfg.to_dict(), "scene_token_ee": 1}).validate()
    with pytest.raises(ValueError, match="scene_token_ee .* set scene_token=true"):
        FlowVLAConfig(**{**cfg.to_dict(), "scene_token": False}).validate()


def test_noise_scale_zero_is_deterministic_and_equals_zero_noise():
    policy, ds = build("flow_vla")
    policy.eval()
    batch = ds.batch(2)
    c = policy.config
    c.noise_scale = 0.0
    a, b = policy.predict_action_chunk(batch), policy.predict_action_chunk(batch)
    assert torch.equal(a, b)
    zero = policy.predict_action_chunk(batch, noise=torch.zeros(2, c.horizon, c.max_action_dim))
    assert torch.allclose(a, zero)
    c.noise_scale = 1.0
    assert not torch.allclose(policy.predict_action_chunk(batch), a)


def test_init_from_adds_or_drops_the_optional_perception_weights(tmp_path):
    """Fine-tuning a plain conv flow_vla into one with keypoint tokens / image positions
    copies every shared weight and starts the add-ons fresh; the reverse drops them."""
    from robolearn.policies.base import init_from_checkpoint

    kw = dict(vision_type="conv", conv_channels=[8, 16])
    plain, _ = build("flow_vla", seed=0, **kw)
    plain.save_pretrained(tmp_path / "plain")
    rich, _ = build("flow_vla", seed=1, image_keypoints=True, image_pos_embed=True, **kw)
    pos = rich.image_pos.detach().clone()
    n = init_from_checkpoint(rich, tmp_path / "plain")
    assert n == len(plain.state_dict())
    assert torch.equal(rich.image_proj.weight, plain.image_proj.weight)
    assert torch.equal(rich.image_pos, pos)  # fresh, not copied
    rich.save_pretrained(tmp_path / "rich")
    back, _ = build("flow_vla", seed=2, **kw)
    assert init_from_checkpoint(back, tmp_path / "rich") == len(back.state_dict())
    assert torch.equal(back.image_proj.weight, plain.image_proj.weight)


def test_a_cut_instruction_is_warned_about_once_and_an_exact_fit_is_not(caplog):
    """max_text_tokens=12 holds BOS + 10 bytes + EOS: a 10-character instruction fits
    exactly (no warning), an 11-character one loses its end (one warning, naming it)."""
    policy, ds = build("flow_vla")
    assert policy.config.max_text_tokens == 12
    batch = ds.batch(2)
    with caplog.at_level("WARNING", logger="robolearn.policies.flow_vla.model"):
        policy.embed_prefix(dict(batch, **{K.LANGUAGE: ["abcdefghij", "short"]}))
        assert "is cut" not in caplog.text
        for _ in range(2):
            policy.embed_prefix(dict(batch, **{K.LANGUAGE: ["abcdefghijk", "short"]}))
    assert caplog.text.count("is cut") == 1 and "'abcdefghijk'" in caplog.text


def _keypoint_setup(**overrides):
    """A tiny flow_vla with the keypoint scene head and a batch whose one "object" is a
    white 2x2 square at a random spot of black images: its image point (the label of
    every camera) and its scene state (u, v, 0) follow the square; the end effector,
    the second point, is out of view."""
    cfg, ds, stats, _, batch = _scene_setup(scene_head="keypoints", **overrides)
    b, t = batch[K.OBS_STATE].shape[:2]
    size = batch[ds.image_keys[0]].shape[-1]
    xy = torch.randint(1, size - 3, (b, 2), generator=torch.Generator().manual_seed(2))
    uv = (xy.float() + 1.0) / size  # the square's centre, in 0..1 of the image
    for k in ds.image_keys:
        img = torch.zeros_like(batch[k])
        for i in range(b):
            img[i, :, :, xy[i, 1]: xy[i, 1] + 2, xy[i, 0]: xy[i, 0] + 2] = 255
        batch[k] = img
        lab = torch.zeros(b, t, 2, 3)
        lab[:, :, 0, :2] = uv[:, None]
        lab[:, :, 0, 2] = 1.0
        batch[K.keypoints_key(K.camera_name(k))] = lab
    scene = torch.cat([uv, torch.zeros(b, 1)], -1)[:, None].expand(-1, t, -1).contiguous()
    batch[K.OBS_ENV_STATE] = scene
    flat = scene.reshape(-1, 3).numpy()
    stats[K.OBS_ENV_STATE] = {"mean": flat.mean(0).tolist(), "std": (flat.std(0) + 1e-3).tolist()}
    cfg.resolve_features(stats, ds.image_keys)
    return cfg, ds, stats, batch


def test_keypoint_scene_head_learns_image_points_and_lifts_them(tmp_path):
    """scene_head=keypoints (train/flow_vla_perception): per camera, a convolutional head
    finds each object as an image point (supervised by observation.keypoints.<camera>),
    an MLP lifts the points to the scene state; the loss reaches the head only, the points
    and the positions improve, validation reports both errors, and a policy starts from
    the stage with the same estimate. Without the labels the error names the collector
    flag and the pooled head."""
    import pytest

    from robolearn.policies.base import init_from_checkpoint
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.keypoints import KeypointSceneHead
    from robolearn.policies.flow_vla.model import FlowVLAPolicy

    cfg, ds, stats, batch = _keypoint_setup(perception_only=True)
    torch.manual_seed(0)
    policy = FlowVLAPolicy(cfg, stats)
    assert isinstance(policy.scene_head, KeypointSceneHead)
    assert policy.scene_head.n_points == 2  # one object (3-D scene state) + the end effector
    out = policy(batch)
    assert set(out) == {"loss", "point_loss", "scene_loss"}
    out["loss"].backward()
    assert all(p.grad is None for p in policy.vision.parameters())  # the ViT is not used
    assert policy.scene_head.trunks[0][0][0].weight.grad.abs().sum() > 0
    assert policy.scene_head.lift[0].weight.grad.abs().sum() > 0
    policy.eval()
    before = policy.val_metrics(batch)
    assert set(before) == {"scene_err_cm", "point_err_px"}
    policy.train()
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.grad is not None], lr=3e-3)
    first = out["point_loss"].item()
    for _ in range(60):
        out = policy(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["point_loss"].item() < 0.5 * first
    policy.eval()
    after = policy.val_metrics(batch)
    assert after["point_err_px"] < 0.5 * before["point_err_px"]
    assert after["scene_err_cm"] < 0.75 * before["scene_err_cm"]
    policy.train()
    policy.save_pretrained(tmp_path / "perception")
    nxt = FlowVLAConfig(**{**cfg.to_dict(), "perception_only": False, "scene_token": True,
                           "freeze_vision": True, "camera_tokens": False,
                           "scene_token_teacher": True})
    student = FlowVLAPolicy(nxt, stats)
    init_from_checkpoint(student, tmp_path / "perception")
    student.eval(), policy.eval()
    obs = {k: v for k, v in batch.items() if k != K.OBS_ENV_STATE and "keypoints" not in k}
    assert torch.allclose(student.scene_estimate(obs), policy.scene_estimate(obs), atol=1e-6)
    # training the policy stage skips the frozen head (the token is teacher-forced: the
    # recorded positions still steer the loss) ...
    student.train()
    calls = []
    hook = student.scene_head.register_forward_hook(lambda *a: calls.append(1))
    torch.manual_seed(5)
    out = student(batch)
    assert set(out) == {"loss", "flow_loss"} and not calls
    moved = dict(batch, **{K.OBS_ENV_STATE: batch[K.OBS_ENV_STATE] + 0.3})
    torch.manual_seed(5)
    assert not torch.allclose(student(moved)["loss"], out["loss"])
    # ... and inference reads the cameras through it: moving the square moves the actions
    student.eval()
    noise = torch.randn(8, nxt.horizon, nxt.max_action_dim)
    a = student.predict_action_chunk(obs, noise=noise)
    rolled = {**obs, **{k: torch.roll(obs[k], shifts=(3, 3), dims=(-2, -1))
                        for k in ds.image_keys}}
    assert calls and not torch.allclose(a, student.predict_action_chunk(rolled, noise=noise))
    hook.remove()
    policy.train()
    no_labels = {k: v for k, v in batch.items() if "keypoints" not in k}
    with pytest.raises(KeyError, match="--scene-state .* policy.scene_head=pool"):
        policy(no_labels)
    with pytest.raises(ValueError, match="scene_head must be pool or keypoints"):
        FlowVLAConfig(**{**cfg.to_dict(), "scene_head": "heatmap"}).validate()


def test_keypoint_labels_follow_the_training_shift():
    """The random shift moves each image's content by the returned amount: a lit pixel at
    uv is found at uv + moved afterwards (the labels and the lift's input are corrected
    with it)."""
    from robolearn.policies.flow_vla.keypoints import shift_images

    torch.manual_seed(0)
    s = 16
    ims = []
    for x, y in ((5, 9), (10, 3)):
        im = torch.full((6, 3, s, s), -1.0)
        im[:, :, y, x] = 1.0
        ims.append(im)
    moved, shift = shift_images(ims, 2)
    assert shift.shape == (6, 2, 2) and shift.abs().max() > 0
    for c, (x, y) in enumerate(((5, 9), (10, 3))):
        for i in range(6):
            row, col = divmod(int(moved[c][i, 0].argmax()), s)
            assert (col, row) == (x + round(float(shift[i, c, 0]) * s),
                                  y + round(float(shift[i, c, 1]) * s))
