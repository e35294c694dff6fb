"""Checkpoints: a crash mid-save keeps the previous one; old ones are pruned."""

import pytest

from robolearn.policies import load_policy
from robolearn.training.checkpoint import CKPT_DIR, latest_checkpoint
from robolearn.training.trainer import Trainer
from tests.training.helpers import tiny_run


def test_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg, policy, train, _ = tiny_run("bc", tmp_path, steps=4)
    t = Trainer(cfg, policy, train)
    t.fit(until=2)
    assert latest_checkpoint(tmp_path).name == "step_00000002"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(policy), "save_extra", boom)  # fails after weights were written
    with pytest.raises(OSError, match="disk full"):
        t.fit()
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step_00000002"
    monkeypatch.undo()
    assert load_policy(ckpt / "policy").config.action_dim == 2
    assert not (tmp_path / CKPT_DIR / "step_00000004").exists()


def test_keep_last_prunes_old_checkpoints(tmp_path):
    cfg, policy, train, _ = tiny_run("bc", tmp_path, steps=8, keep_last=2)
    Trainer(cfg, policy, train).fit()
    names = sorted(p.name for p in (tmp_path / CKPT_DIR).glob("step_*"))
    assert names == ["step_00000006", "step_00000008"]
