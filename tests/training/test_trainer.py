"""The shared trainer: learning, run folder, checkpoints without pickles, exact resume."""

import csv
import json

import pytest
import torch

from robolearn.policies import load_policy
from robolearn.training.checkpoint import latest_checkpoint
from robolearn.training.ema import EMA
from robolearn.training.schedule import warmup_cosine
from robolearn.training.trainer import Trainer
from tests.training.helpers import tiny_run


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_the_policys_validation_numbers_are_logged_beside_the_loss(tmp_path):
    # Policy.val_metrics: averaged over the validation batches, logged as val_<name>, plotted
    from robolearn import keys as K

    cfg, policy, train, val = tiny_run("bc", tmp_path, steps=10, val_every=5)
    cfg.log_every, cfg.val_batches = 5, 2
    seen = []

    def probe(batch):
        seen.append(float(batch[K.ACTION].abs().mean()))
        return {"probe": seen[-1]}

    policy.val_metrics = probe
    Trainer(cfg, policy, train, val).fit()
    rows = _rows(tmp_path)
    assert [r["val_probe"] for r in rows] != ["", ""] and len(seen) == 4
    assert float(rows[0]["val_probe"]) == pytest.approx(sum(seen[:2]) / 2, rel=1e-6)
    assert float(rows[0]["val_loss"]) > 0
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_training_reduces_loss_and_writes_the_run_folder(tmp_path):
    cfg, policy, train, val = tiny_run("bc", tmp_path, steps=30, val_every=10)
    cfg.save_every, cfg.log_every = 15, 5
    Trainer(cfg, policy, train, val).fit()
    rows = _rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20, 25, 30]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert all(float(r["samples_per_s"]) > 0 for r in rows)
    assert "val_loss" in rows[1] and rows[1]["val_loss"] != ""
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert json.loads((tmp_path / "config.json").read_text())["policy_type"] == "bc"
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step_00000030"
    # no pickles anywhere: only safetensors and JSON
    suffixes = {p.suffix for p in ckpt.rglob("*") if p.is_file()}
    assert suffixes == {".safetensors", ".json"}
    # the EMA export is a loadable policy
    ema_policy = load_policy(ckpt / "policy_ema")
    assert ema_policy.predict_action_chunk(train.batch(2)).shape == (2, 4, 2)


@pytest.mark.parametrize("name", ["bc", "flow_vla", "iql", "pretrain"])
def test_resume_is_exact(name, tmp_path):
    """Train 4 steps straight vs 2 steps, stop, resume to 4: identical weights and losses.

    flow_vla draws noise and flow times every step, so this also covers the RNG state.
    """
    cfg_a, pol_a, train, val = tiny_run(name, tmp_path / "a")
    Trainer(cfg_a, pol_a, train).fit()

    cfg_b, pol_b, train, val = tiny_run(name, tmp_path / "b")
    Trainer(cfg_b, pol_b, train).fit(until=2)
    torch.manual_seed(999)  # a fresh process would start from another RNG state
    cfg_c, pol_c, train, val = tiny_run(name, tmp_path / "b", resume=True, seed=0)
    trainer = Trainer(cfg_c, pol_c, train)
    trainer.fit()
    assert trainer.step == 4
    for (n, a), (_, b) in zip(pol_a.state_dict().items(), pol_c.state_dict().items()):
        assert torch.equal(a, b), n
    la = [r["loss"] for r in _rows(tmp_path / "a")]
    lb = [r["loss"] for r in _rows(tmp_path / "b")]
    assert la == lb and len(la) == 4
    ema_a = load_policy(latest_checkpoint(tmp_path / "a") / "policy_ema").state_dict()
    ema_b = load_policy(latest_checkpoint(tmp_path / "b") / "policy_ema").state_dict()
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_resume_refuses_other_policy_settings_and_names_the_fix(tmp_path):
    """A resume whose policy.* settings differ from the run's would not be exact (e.g. a
    pre-floor checkpoint resumed with the floor on): refused, naming field and fix."""
    cfg, pol, train, _ = tiny_run("bc", tmp_path)
    Trainer(cfg, pol, train).fit(until=2)
    f = latest_checkpoint(tmp_path) / "policy" / "config.json"
    meta = json.loads(f.read_text())
    del meta["config"]["state_scale_floor"]  # as written before the field existed
    f.write_text(json.dumps(meta))
    cfg, pol, train, _ = tiny_run("bc", tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"state_scale_floor: checkpoint 0.0, now 0.01.*"
                                         r"policy.state_scale_floor=0.0"):
        Trainer(cfg, pol, train).fit()
    cfg, pol, train, _ = tiny_run("bc", tmp_path, resume=True)
    cfg.policy.state_scale_floor = 0.0
    pol = type(pol)(cfg.policy, train.stats())
    trainer = Trainer(cfg, pol, train)
    trainer.fit()
    assert trainer.step == 4


def test_warmup_cosine_schedule():
    f = lambda s: warmup_cosine(s, warmup_steps=10, total_steps=110, min_ratio=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 110))


def test_ema_follows_the_weights_with_warmup_decay():
    lin = torch.nn.Linear(2, 1)
    ema = EMA(lin, max_decay=0.9)
    start = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update(lin, step=0)  # decay = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.shadow["weight"], 0.1 * start + 0.9 * (start + 1))
    with ema.applied(lin):
        assert torch.allclose(lin.weight, ema.shadow["weight"])
    assert torch.allclose(lin.weight, start + 1)


def test_non_finite_loss_is_a_clear_error(tmp_path):
    cfg, policy, train, _ = tiny_run("bc", tmp_path)
    t = Trainer(cfg, policy, train)
    with torch.no_grad():
        next(policy.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower optim.lr"):
        t.train_step(train.batch(8))


def test_bf16_autocast_on_cpu_trains(tmp_path):
    cfg, policy, train, _ = tiny_run("flow_vla", tmp_path, steps=2, mixed_precision="bf16")
    t = Trainer(cfg, policy, train)
    assert t.amp_dtype == torch.bfloat16
    last = t.fit()
    assert torch.isfinite(torch.tensor(last["loss"]))
    assert all(p.dtype == torch.float32 for p in policy.parameters())  # weights stay fp32


def test_evaluator_hook_runs_with_ema_weights_and_lands_in_metrics(tmp_path):
    cfg, policy, train, _ = tiny_run("bc", tmp_path, steps=4, eval_every=2)
    seen = []

    def evaluator(pol, step):
        assert not pol.training
        seen.append((step, pol.head[0].weight.detach().clone()))
        return {"success_rate": 0.25 * step}

    t = Trainer(cfg, policy, train, evaluator=evaluator)
    t.fit()
    assert [s for s, _ in seen] == [2, 4]
    assert torch.allclose(seen[-1][1], t.ema.shadow["head.0.weight"])  # EMA weights applied
    rows = _rows(tmp_path)
    assert [r.get("eval/success_rate") for r in rows] == ["", "0.5", "", "1.0"]
    assert "checkpoint" in (tmp_path / "train.log").read_text()


def test_max_minutes_saves_and_stops_then_resume_finishes(tmp_path):
    cfg, policy, train, _ = tiny_run("bc", tmp_path, steps=6)
    cfg.max_minutes, cfg.save_every, cfg.log_every = 1e-9, 100, 100
    t = Trainer(cfg, policy, train)
    last = t.fit()
    assert t.step == 1 and last["step"] == 1  # the budget ran out after the first step
    assert latest_checkpoint(tmp_path).name == "step_00000001"
    assert [int(r["step"]) for r in _rows(tmp_path)] == [1]
    cfg2, pol2, train, _ = tiny_run("bc", tmp_path, steps=6, resume=True)
    t2 = Trainer(cfg2, pol2, train)
    t2.fit()
    assert t2.step == 6
