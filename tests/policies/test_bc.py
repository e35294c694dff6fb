"""The transformer backbone of bc honours the same contract as its MLP default."""

import torch

from robolearn import keys as K
from robolearn.policies import load_policy
from tests.policies.conftest import build

TF = dict(backbone="transformer", d_model=16, n_heads=2, n_decoder_layers=1)


def test_transformer_backbone_learns_predicts_and_round_trips(tmp_path):
    policy, ds = build("bc", **TF)
    batch = ds.batch(8)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = policy(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.97 * losses[0], losses
    dead = {n for n, p in policy.named_parameters() if p.grad is None}
    assert dead == {"image_encoder.pool_proj.weight", "image_encoder.pool_proj.bias"}
    assert policy.ddp_find_unused_parameters  # so DDP tolerates them
    policy.eval()
    chunk = policy.predict_action_chunk(batch)
    assert chunk.shape == (8, policy.config.horizon, policy.config.action_dim)
    policy.save_pretrained(tmp_path)
    assert torch.equal(load_policy(tmp_path).predict_action_chunk(batch), chunk)


def test_transformer_backbone_ignores_padded_targets():
    policy, ds = build("bc", **TF)
    batch = ds.batch(8)
    ref = policy(batch)["loss"]
    act = batch[K.ACTION].clone()
    act[batch[K.pad_key(K.ACTION)]] += 100.0
    assert torch.allclose(policy({**batch, K.ACTION: act})["loss"], ref, atol=1e-6)
