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


@pytest.mark.parametrize("name,over", [("bc", {}), ("bc", {"backbone": "transformer"}),
                                       ("diffusion", {})])
def test_conv_policies_follow_the_instruction(name, over):
    """Same observations, two instructions, opposite actions: only a policy that reads the
    instruction can fit both (PickPlace names the cube and the target only in words)."""
    import dataclasses

    from robolearn import keys as K
    from robolearn.policies.registry import get_config_class
    from robolearn.policies.testing import synthetic_policy

    torch.manual_seed(0)
    cfg = dataclasses.replace(get_config_class(name).tiny(), **over)
    pol, ds = synthetic_policy(name, cfg, cameras=[], state_dim=4, action_dim=2)
    assert pol.instruction is not None
    b = ds.batch(32)
    b.pop(K.pad_key(K.ACTION), None)
    words = ["go to the left bin", "go to the right bin"] * 16
    sign = torch.tensor([1.0, -1.0] * 16)
    b[K.LANGUAGE] = words
    b[K.ACTION] = sign[:, None, None].expand(32, cfg.horizon, 2).clone()
    opt = torch.optim.AdamW(pol.parameters(), lr=3e-3)
    pol.train()
    for _ in range(500 if name == "diffusion" else 200):  # a denoiser needs more steps
        loss = pol(b)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    pol.eval()
    obs = {k: v for k, v in b.items() if k != K.ACTION}
    # the mean of a few draws (diffusion samples; bc is deterministic): unconditioned = 50%
    got = torch.stack([pol.predict_action_chunk(obs)[:, 0, 0] for _ in range(5)]).mean(0)
    assert (torch.sign(got) == sign).float().mean() >= 0.9, got[:6]


@pytest.mark.parametrize("name", ["bc", "diffusion", "iql"])
def test_default_configs_read_every_tabletop_instruction_whole(name):
    """Long-horizon instructions name their last step at the end ("..., then close the
    drawer"): a default config must not cut any task's instruction, so two instructions
    that differ only in their last word embed differently."""
    import itertools

    from robolearn.envs import scene as S
    from robolearn.envs.tasks import TASKS
    from robolearn.policies.encoders import InstructionEncoder
    from robolearn.policies.registry import get_policy_class

    cfg = get_policy_class(name).config_class()
    longest = max(len(tpl.format(obj=a.replace("_", " "), obj2=b.replace("_", " "),
                                 target="target pad").encode())
                  for t in TASKS.values() for tpl in t.templates
                  for a, b in itertools.permutations(S.CUBES, 2))
    assert longest + 1 <= cfg.max_text_tokens  # + BOS
    enc = InstructionEncoder(8, cfg.max_text_tokens)
    a = "first open the drawer, then push the green block to the target pad and place the red block in the bowl"
    e = enc([a, a[:-4] + "sink"], 2, "cpu")
    assert not torch.allclose(e[0], e[1])


def test_conv_instruction_encoder_reads_a_colour_in_instructions_of_any_length():
    """lang_encoder=conv: a linear read-out of the max-pooled features names the colour of
    'put the <c> block ...' whatever filler follows it (long-horizon instructions are 2-3x
    a skill's), including lengths never trained on; an unknown kind is refused."""
    from robolearn.policies.encoders import InstructionEncoder

    torch.manual_seed(0)
    colours = ["red", "green", "blue"]
    filler = " and then close the drawer slowly after opening the cabinet door"

    def texts(reps):
        return [f"put the {c} block in the bowl{filler * r}" for r in reps for c in colours]

    enc = InstructionEncoder(16, 160, kind="conv")
    head = torch.nn.Linear(16, 3)
    opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=1e-2)
    train = texts([0, 1])
    y = torch.arange(3).repeat(2)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(head(enc(train, len(train), "cpu")), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = texts([2])  # longer than any training instruction
    with torch.no_grad():
        pred = head(enc(test, len(test), "cpu")).argmax(-1)
    assert pred.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="lang_encoder"):
        InstructionEncoder(16, kind="lstm")
