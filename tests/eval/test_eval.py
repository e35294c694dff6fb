"""robolearn-eval: intervals, the chunk executor, and real rollouts in the sim."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robolearn import keys as K
from robolearn.eval.config import EvalConfig, EvalProtocol
from robolearn.eval.report import wilson_interval
from robolearn.eval.rollout import ChunkExecutor


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-3) and hi == 1.0
    lo, hi = wilson_interval(40, 50)
    assert lo == pytest.approx(0.670, abs=2e-3) and hi == pytest.approx(0.888, abs=2e-3)


class CountingPolicy:
    """Chunks whose actions encode (call number, env's latest state[0], step in chunk)."""

    def __init__(self, n_obs=2, horizon=4, n_action_steps=2):
        self.config = SimpleNamespace(n_obs=n_obs, horizon=horizon, n_action_steps=n_action_steps)
        self.calls = []

    def on_device(self, obs):
        return obs

    def predict_action_chunk(self, obs):
        self.calls.append(obs)
        s = obs[K.OBS_STATE][:, -1, 0]
        n = len(self.calls)
        steps = torch.arange(self.config.horizon, dtype=torch.float32)
        return torch.stack([torch.stack([torch.full_like(steps, n), v.expand(4), steps], -1)
                            for v in s])


def test_chunk_executor_batches_queues_and_pads_history():
    pol = CountingPolicy()
    ex = ChunkExecutor(pol, num_envs=3)
    for i in range(3):
        ex.observe(i, {K.OBS_STATE: np.array([10.0 * i, 0], np.float32)})
    a = ex.act([0, 1, 2], ["a", "b", "c"])
    assert len(pol.calls) == 1  # one batched call for all three envs
    batch = pol.calls[0]
    assert batch[K.OBS_STATE].shape == (3, 2, 2)
    assert batch[K.pad_key(K.OBS_STATE)].tolist() == [[True, False]] * 3  # first step padded
    assert batch[K.LANGUAGE] == ["a", "b", "c"]
    assert [a[i][1] for i in range(3)] == [0.0, 10.0, 20.0] and a[0][2] == 0
    # second step: queues still hold a second action each -> no new call
    for i in range(3):
        ex.observe(i, {K.OBS_STATE: np.array([10.0 * i + 1, 0], np.float32)})
    a = ex.act([0, 1, 2], ["a", "b", "c"])
    assert len(pol.calls) == 1 and a[2][2] == 1
    # env 1 restarts (new episode): only it gets a new chunk, with fresh padding
    ex.reset(1)
    ex.observe(1, {K.OBS_STATE: np.array([5.0, 0], np.float32)})
    ex.observe(0, {K.OBS_STATE: np.array([2.0, 0], np.float32)})
    a = ex.act([0, 1], ["a", "b"])
    assert len(pol.calls) == 2
    call = pol.calls[1]
    assert call[K.OBS_STATE].shape[0] == 2  # envs 0 and 1 (both queues empty), not env 2
    assert call[K.pad_key(K.OBS_STATE)].tolist() == [[False, False], [True, False]]
    assert call[K.OBS_STATE][0, :, 0].tolist() == [1.0, 2.0]  # env 0's real history
    # dropping a queue (new instruction) forces a fresh chunk for that env only
    ex.drop_queue(0)
    ex.act([0, 1], ["x", "b"])
    assert len(pol.calls) == 3 and pol.calls[2][K.LANGUAGE] == ["x"]


def test_protocol_validation_names_the_field():
    with pytest.raises(ValueError, match="language"):
        EvalProtocol(language="task").validate()
    with pytest.raises(ValueError, match="trials"):
        EvalProtocol(trials=0).validate()


# ----------------------------------------------------------------------------- in the sim
class ReplayPolicy(torch.nn.Module):
    """Plays recorded expert action sequences back, one action per chunk (horizon 1)."""

    name = "replay"

    def __init__(self, sequences, image_keys=()):
        super().__init__()
        self.config = SimpleNamespace(n_obs=1, horizon=1, n_action_steps=1,
                                      image_keys=list(image_keys))
        self.actions = [a for seq in sequences for a in seq]
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def on_device(self, obs):
        return obs

    def predict_action_chunk(self, obs):
        b = obs[K.OBS_STATE].shape[0]
        assert b == 1
        return torch.as_tensor(self.actions.pop(0))[None, None]


@pytest.fixture(scope="module")
def _assets():
    from robolearn.envs.assets import is_installed

    if not is_installed():
        pytest.skip("robot models not installed; run `python -m robolearn.envs.assets`")


@pytest.mark.sim
def test_replayed_expert_succeeds_on_the_protocol_seeds(_assets, tmp_path):
    """Trial j must be the scene of seed + j: the expert recorded in-process on exactly those
    seeds, replayed open-loop through the vector env, succeeds in every trial; the plan
    progress, report and videos come out right."""
    from robolearn.envs import make_env
    from robolearn.envs.demos import rollout
    from robolearn.eval.run import evaluate

    proto = EvalProtocol(tasks=["PickPlace"], trials=2, seed=4242, num_envs=1, videos=1)
    proto.env.cameras.resolution = 32
    env = make_env("PickPlace", cameras={"names": ["front"], "resolution": 32})
    seqs, instr = [], []
    for j in range(proto.trials):
        steps, meta = rollout(env, proto.seed + j, success_tail=0)  # eval ends at success
        assert meta[K.META_SUCCESS]
        seqs.append(list(steps[K.ACTION]))
        instr.append(meta[K.META_INSTRUCTION])
    env.close()
    pol = ReplayPolicy(seqs, image_keys=[K.image_key("front")])
    pol.device = "cpu"
    rep = evaluate(pol, proto, tmp_path)
    trials = rep["trials"]
    assert [t["seed"] for t in trials] == [4242, 4243]
    assert [t["instruction"] for t in trials] == instr
    assert all(t["success"] for t in trials), trials
    assert [t["steps"] for t in trials] == [len(s) for s in seqs]
    assert all(t["plan_steps_done"] == t["plan_length"] == 2 for t in trials)
    assert rep["tasks"][0]["success_rate"] == 1.0 and not pol.actions  # all replayed
    assert {k["skill"]: (k["attempts"], k["successes"]) for k in rep["skills"]} == {
        "pick": (2, 2), "place": (2, 2)}
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["protocol"]["seed"] == 4242 and saved["overall"]["successes"] == 2
    assert (tmp_path / "success.png").stat().st_size > 0
    md = (tmp_path / "report.md").read_text()
    assert "| PickPlace | 100% (2/2)" in md and "| place | 100% (2/2)" in md
    # a report of single-skill tasks has no per-skill table (it would repeat the task rows)
    from robolearn.eval.report import markdown

    single = {**saved, "trials": [{**t, "plan_length": 1} for t in saved["trials"]]}
    assert "Per skill" in markdown(saved) and "Per skill" not in markdown(single)
    assert all(t["reflex_steps"] == 0 for t in trials) and "contact reflex" not in md
    assert trials[0]["video"].endswith("PickPlace_trial000_success.gif")
    assert not trials[1]["video"]  # videos=1


@pytest.mark.sim
def test_pressing_into_the_table_is_counted_in_the_report(_assets, tmp_path):
    """Joint targets 5 cm below the table top: the sim's contact reflex stops the arm, and
    the trial and the report say how often."""
    import numpy as np

    from robolearn.envs import make_env
    from robolearn.envs.control import IKSolver
    from robolearn.envs.skills import down_mat
    from robolearn.eval.run import evaluate

    proto = EvalProtocol(tasks=["Pick"], trials=1, seed=7, num_envs=1, videos=0, max_steps=12)
    proto.env.cameras.names = []
    env = make_env("Pick", cameras={"names": []})
    env.reset(seed=proto.seed)
    sim = env.unwrapped.sim
    q = IKSolver(sim).solve(np.array([0.45, 0.0, -0.05]), down_mat(0.0), sim.arm_target.copy())
    env.close()
    pol = ReplayPolicy([[np.r_[q, 1.0].astype(np.float32)] * 12])
    pol.device = "cpu"
    rep = evaluate(pol, proto, tmp_path)
    n = rep["trials"][0]["reflex_steps"]
    assert 5 <= n <= 12 and not rep["trials"][0]["sim_unstable"]
    assert f"contact reflex ({n} steps in all)" in (tmp_path / "report.md").read_text()


def _state_bc():
    """An untrained tiny bc reading the Panda's 15-D state (no cameras)."""
    from robolearn.policies.bc.config import BCConfig
    from robolearn.policies.bc.model import BCPolicy
    from robolearn.policies.testing import SyntheticWindowDataset

    cfg = BCConfig.tiny()
    ds = SyntheticWindowDataset(state_dim=15, action_dim=8, cameras=[], n_obs=cfg.n_obs,
                                horizon=cfg.horizon)
    cfg.resolve_features(ds.stats(), [])
    return BCPolicy(cfg, ds.stats())


@pytest.mark.sim
def test_parallel_envs_run_every_trial_once_and_time_out(_assets, tmp_path):
    """A policy that holds still fails every trial at the horizon; three trials on two
    workers each run exactly once, in seed order."""
    from robolearn.eval.rollout import evaluate_task
    pol = _state_bc()
    proto = EvalProtocol(tasks=["Reach"], trials=3, max_steps=6, num_envs=2, videos=0)
    res = evaluate_task(pol, "Reach", proto)
    assert [t.trial for t in res.trials] == [0, 1, 2]
    assert [t.seed for t in res.trials] == [proto.seed, proto.seed + 1, proto.seed + 2]
    assert all(t.steps == 6 and not t.success for t in res.trials)
    assert all(t.skill_outcomes() == [("reach", False)] for t in res.trials)
    assert len(res.chunk_ms) >= 1


def test_cli_rejects_bad_checkpoint_and_task(tmp_path, capsys):
    from robolearn.cli.eval import main

    assert main([f"checkpoint={tmp_path / 'nope'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([f"checkpoint={tmp_path}", "tasks=[Fly]"]) == 2
    assert "unknown task 'Fly'" in capsys.readouterr().err
    assert main([f"checkpoint={tmp_path}"]) == 2
    assert "holds no policy" in capsys.readouterr().err
    assert main(["trials=many", f"checkpoint={tmp_path}"]) == 2
    assert "trials" in capsys.readouterr().err


def test_eval_config_composes_from_presets():
    from robolearn.config import compose

    cfg = compose("eval/primitives", ["checkpoint=x"])
    assert isinstance(cfg, EvalConfig) and "OpenDrawer" in cfg.tasks and cfg.trials == 50


@pytest.mark.sim
def test_object_state_env_and_policy_must_agree(_assets):
    """A 15-D-state policy in an env that appends the object state (31-D) fails before the
    first step, naming the setting to change; with the setting it runs."""
    from robolearn.eval.rollout import evaluate_task
    pol = _state_bc()
    proto = EvalProtocol(tasks=["Reach"], trials=1, max_steps=2, num_envs=1, videos=0)
    proto.env.cameras.names = []
    proto.env.object_state = True
    with pytest.raises(ValueError, match="env.object_state=false"):
        evaluate_task(pol, "Reach", proto)
    proto.env.object_state = False
    assert len(evaluate_task(pol, "Reach", proto).trials) == 1


def test_policy_trained_on_other_action_space_is_refused_naming_the_setting():
    """End-effector deltas must never reach an env (or the ROS node) as joint targets: the
    check runs before any env starts, and names env.action_space; old checkpoints (no
    action space recorded) and converted data are not second-guessed."""
    from robolearn.eval.rollout import evaluate_task
    from robolearn.policies.base import check_action_space

    pol = _state_bc()
    pol.config.action_space = "ee_delta"
    proto = EvalProtocol(tasks=["Reach"], trials=1, max_steps=2, num_envs=1, videos=0)
    with pytest.raises(ValueError, match="takes joint_pos actions.*env.action_space=ee_delta"):
        evaluate_task(pol, "Reach", proto)
    with pytest.raises(ValueError, match="metaworld/reach-v3 takes ee_delta.*xy_target"):
        pol.config.action_space = "xy_target"
        evaluate_task(pol, "metaworld/reach-v3", proto)
    with pytest.raises(ValueError, match="trained on ee_delta"):
        check_action_space(_with(pol, "ee_delta"), "joint_pos", "the ROS node")
    for have in ("", "lerobot", "joint_pos"):
        check_action_space(_with(pol, have), "joint_pos", "the ROS node")


def _with(pol, action_space: str):
    pol.config.action_space = action_space
    return pol


@pytest.mark.sim
def test_policy_overrides_apply_during_the_evaluation_only_and_are_reported(_assets, tmp_path):
    """EvalProtocol.policy_overrides sets a policy's inference-time settings (flow_vla's
    flow temperature and Euler steps) for the rollouts, records them in the report and
    restores them; a setting that changes what was trained is refused, naming the allowed."""
    from robolearn.config import compose
    from robolearn.eval.run import evaluate
    from robolearn.policies.flow_vla.config import FlowVLAConfig
    from robolearn.policies.testing import synthetic_policy

    cfg = FlowVLAConfig.tiny()
    cfg.max_state_dim = 16  # the Panda's 15-D state
    pol, _ = synthetic_policy("flow_vla", cfg, cameras=[])
    seen = []
    predict = pol.predict_action_chunk

    def spy(obs, **kw):
        seen.append((pol.config.noise_scale, pol.config.num_steps))
        return predict(obs, **kw)

    pol.predict_action_chunk = spy
    proto = compose("eval/default", ["tasks=[Reach]", "trials=1", "max_steps=2", "num_envs=1",
                                     "videos=0", "env.cameras.names=[]",
                                     "+policy_overrides.noise_scale=0.0",
                                     "+policy_overrides.num_steps=2"])
    rep = evaluate(pol, proto, tmp_path)
    assert seen and set(seen) == {(0.0, 2)}
    assert (pol.config.noise_scale, pol.config.num_steps) == (1.0, 3)  # restored
    assert rep["protocol"]["policy_overrides"] == {"noise_scale": 0.0, "num_steps": 2}
    assert "policy settings" in (tmp_path / "report.md").read_text()
    proto.policy_overrides = {"horizon": 8}
    with pytest.raises(ValueError, match=r"\['horizon'\] are not inference-time.*noise_scale"):
        evaluate(pol, proto)
    assert pol.config.horizon == FlowVLAConfig.tiny().horizon
    for bad, match in (({"num_steps": 2.5}, "expected a int"),
                       ({"noise_scale": -1.0}, "noise_scale >= 0")):
        proto.policy_overrides = bad
        with pytest.raises(ValueError, match=match):
            evaluate(pol, proto)
    assert (pol.config.noise_scale, pol.config.num_steps) == (1.0, 3)
