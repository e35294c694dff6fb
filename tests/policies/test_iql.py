"""IQL: the expectile loss, chunk returns, and a hand-made MDP with known values."""

import numpy as np
import pytest
import torch

from robolearn import keys as K
from robolearn.policies.iql.config import IQLConfig
from robolearn.policies.iql.model import IQLPolicy, chunk_return, expectile_loss
from robolearn.policies.testing import fit_batch


def _expectile(x, tau):
    """The tau-expectile of samples x by bisection: sum |tau - 1(x < e)| (x - e) = 0."""
    lo, hi = float(x.min()), float(x.max())
    for _ in range(100):
        e = (lo + hi) / 2
        g = np.sum(np.where(x < e, 1 - tau, tau) * (x - e))
        lo, hi = (e, hi) if g > 0 else (lo, e)
    return e


@pytest.mark.parametrize("tau", [0.5, 0.7, 0.9])
def test_expectile_loss_is_minimised_by_the_expectile(tau):
    x = torch.tensor([0.0, 1.0, 2.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([v], lr=0.05)
    for _ in range(3000):
        opt.zero_grad()
        expectile_loss(x - v, tau).mean().backward()
        opt.step()
    assert v.item() == pytest.approx(_expectile(x.numpy(), tau), abs=1e-3)
    if tau == 0.5:
        assert v.item() == pytest.approx(x.mean().item(), abs=1e-3)


def test_chunk_return_discounts_real_steps_and_flags_success():
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    pad = torch.tensor([[False] * 4, [False] * 4, [False, False, False, True]])
    ret, term = chunk_return(r, pad, gamma=0.5)
    assert ret.tolist() == [0.25, 0.0, 0.0]  # the third reward sits on a padded step
    assert term.tolist() == [True, False, False]


def test_chunk_return_counts_only_the_first_success():
    """Demos go on after the success with the env's reward still 1 (the expert's release):
    a chunk's return is the discounted first reward, not the sum of the tail's."""
    r = torch.tensor([[0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    ret, term = chunk_return(r, None, gamma=0.5)
    assert ret.tolist() == [0.5, 1.0]
    assert term.tolist() == [True, True]


def _stats():
    s = {"mean": [0.0], "std": [1.0], "min": [-1.0], "max": [1.0], "q01": [-1.0], "q99": [1.0]}
    return {K.OBS_STATE: dict(s), K.ACTION: dict(s)}


def _mdp_batch(n=32):
    """Two states: start (x=+1) and dead (x=-1). From start, a=+1 succeeds (r=1, terminal)
    and a=-1 leads to dead (r=0); dead loops on itself with r=0. Uniform behaviour data."""
    q = n // 4  # exactly balanced: the value targets below are exact
    start = torch.tensor([True] * (2 * q) + [False] * (2 * q))
    act = torch.tensor([1.0] * q + [-1.0] * q + [1.0] * q + [-1.0] * q)
    s = torch.where(start, 1.0, -1.0)
    success = start & (act > 0)
    s_next = torch.where(success, 1.0, -1.0)  # after success: unused (terminal)
    return {K.OBS_STATE: s[:, None, None], K.next_key(K.OBS_STATE): s_next[:, None, None],
            K.pad_key(K.OBS_STATE): torch.zeros(n, 1, dtype=torch.bool),
            K.pad_key(K.next_key(K.OBS_STATE)): torch.zeros(n, 1, dtype=torch.bool),
            K.ACTION: act[:, None, None], K.pad_key(K.ACTION): torch.zeros(n, 1, dtype=torch.bool),
            K.REWARD: success.float()[:, None], K.LANGUAGE: [""] * n}


@pytest.mark.parametrize("actor_loss,actor_encoder",
                         [("l1", "shared"), ("mse", "shared"), ("l1", "own")])
def test_iql_recovers_known_values_and_the_better_action(actor_loss, actor_encoder):
    torch.manual_seed(0)
    cfg = IQLConfig(n_obs=1, horizon=1, n_action_steps=1, state_dim=1, action_dim=1,
                    lang_dim=0, hidden_dim=64, expectile=0.9, beta=10.0, gamma=0.9,
                    target_tau=0.05, actor_loss=actor_loss, actor_encoder=actor_encoder)
    pol = IQLPolicy(cfg, _stats())
    batch = _mdp_batch()
    fit_batch(pol, batch, 1000, lr=3e-3)
    pol.eval()
    obs = {K.OBS_STATE: torch.tensor([[[1.0]], [[-1.0]]]),
           K.pad_key(K.OBS_STATE): torch.zeros(2, 1, dtype=torch.bool), K.LANGUAGE: ["", ""]}
    v_start, v_dead = pol.value_of(obs).tolist()
    assert v_start == pytest.approx(0.9, abs=0.05)  # the 0.9-expectile of Q in {0, 1}
    assert v_dead == pytest.approx(0.0, abs=0.05)
    with torch.no_grad():
        f = pol.features(obs)[:1]
        q_good = torch.minimum(*pol.q_values(f, torch.ones(1, 1, 1))).item()
        q_bad = torch.minimum(*pol.q_values(f, -torch.ones(1, 1, 1))).item()
    assert q_good == pytest.approx(1.0, abs=0.05) and q_bad == pytest.approx(0.0, abs=0.05)
    assert pol.predict_action_chunk(obs)[0, 0, 0].item() > 0.8  # the advantage-weighted actor


def test_iql_needs_the_next_observation():
    cfg = IQLConfig(state_dim=1, action_dim=1, lang_dim=0)
    pol = IQLPolicy(cfg, _stats())
    batch = _mdp_batch(4)
    del batch[K.next_key(K.OBS_STATE)]
    with pytest.raises(KeyError, match="future_offset"):
        pol(batch)


def test_own_actor_encoder_is_trained_by_the_actor_loss_alone():
    """actor_encoder=own: the instruction embedding the actor reads gets gradient only from
    the actor's loss, the shared one only from the value/critic losses."""
    cfg = IQLConfig(n_obs=1, horizon=1, n_action_steps=1, state_dim=1, action_dim=1,
                    lang_dim=4, max_text_tokens=8, hidden_dim=16, actor_encoder="own")
    pol = IQLPolicy(cfg, _stats())
    batch = _mdp_batch(8)
    batch[K.LANGUAGE] = ["go"] * 8
    pol.zero_grad()
    pol(batch)["loss"].backward()
    own = [p.grad for p in pol.actor_instruction.parameters()]
    shared = [p.grad for p in pol.instruction.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in own + shared)
    pol.zero_grad()  # value + critic outputs only: the actor's encoder stays untouched
    s = pol.features(batch)
    (torch.minimum(*pol.q_values(s, batch[K.ACTION].float())) + pol.value(s)).sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in pol.actor_instruction.parameters())
    with pytest.raises(ValueError, match="actor_encoder"):
        IQLConfig(state_dim=1, action_dim=1, actor_encoder="separate").validate()
    with pytest.raises(ValueError, match="actor_encoder=shared"):
        IQLConfig(state_dim=1, action_dim=1, actor_encoder="own",
                  encoder_init="runs/pretrain").validate()
