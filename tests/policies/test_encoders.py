"""The image-encoder shape contract, for every encoder the policies use."""

import pytest
import torch

from robolearn.policies.encoders import ConvImageEncoder, SiglipImageEncoder


@pytest.mark.parametrize("make", [
    lambda: ConvImageEncoder(image_size=16, channels=[8, 16], out_dim=12),
    lambda: SiglipImageEncoder.from_config(16, 8, width=16, layers=1, heads=2, mlp=32),
], ids=["conv", "siglip"])
def test_image_encoder_contract(make):
    enc = make()
    tokens = enc(torch.randn(3, 3, 16, 16))
    assert tokens.shape == (3, enc.n_tokens, enc.token_dim)
    pooled = enc.pool(tokens)
    assert pooled.shape == (3, enc.out_dim)
    pooled.sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)
