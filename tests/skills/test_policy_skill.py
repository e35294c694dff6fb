"""Policy-backed skills run their checkpoint in the sim, conditioned on their instruction."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robolearn import keys as K
from robolearn.skills import execute
from robolearn.skills.seed import primitive_skills
from robolearn.skills.types import Execution, SkillCall, SkillError


def _policy_skill(name: str, checkpoint: str, **kw):
    base = {s.name: s for s in primitive_skills()}[name]
    return dataclasses.replace(base, execution=Execution(kind="policy", primitive=name,
                                                         checkpoint=checkpoint, **kw))


class Recorder(torch.nn.Module):
    """Replays given actions and records what it was told (a test double for a trained
    policy: the env, the runner and the checks are real)."""

    name = "recorder"

    def __init__(self, actions, image_keys):
        super().__init__()
        self.config = dataclasses.make_dataclass("C", [])()
        self.config.n_obs, self.config.horizon, self.config.n_action_steps = 1, 1, 1
        self.config.image_keys = list(image_keys)
        self.actions, self.seen = list(actions), []

    def on_device(self, obs):
        return obs

    def predict_action_chunk(self, obs):
        self.seen.append({k: (v.shape if torch.is_tensor(v) else v) for k, v in obs.items()})
        return torch.as_tensor(self.actions.pop(0))[None, None]


@pytest.mark.sim
def test_policy_skill_runs_until_its_check_holds(tmp_path, monkeypatch):
    from robolearn.envs.demos import rollout
    from robolearn.skills.execute import make_env

    env = make_env("Pick")  # no learning cameras: the runner renders what the policy reads
    steps, meta = rollout(env, seed=3)
    assert meta[K.META_SUCCESS]
    args = {"obj": meta["task_args"]["obj"]}
    rec = Recorder(list(steps[K.ACTION]) + [steps[K.ACTION][-1]] * 5, [K.image_key("wrist")])
    monkeypatch.setitem(execute._POLICIES, str(tmp_path), rec)
    (tmp_path / "model.safetensors").write_bytes(b"")  # resolves as a policy folder
    skill = _policy_skill("pick", str(tmp_path))
    env.reset(seed=3)
    n = []
    ok = execute.run_call(env, SkillCall.make("pick", args), {"pick": skill},
                          on_step=lambda *a: n.append(1))
    env.close()
    assert ok
    assert len(n) <= len(steps[K.ACTION])  # stopped once the pick check held
    first = rec.seen[0]
    assert first[K.LANGUAGE] == [f"pick up the {args['obj'].replace('_', ' ')}"]
    assert first[K.image_key("wrist")] == (1, 1, 3, 96, 96)
    assert first[K.OBS_STATE] == (1, 1, 15)


def test_policy_skill_errors_name_the_checkpoint(tmp_path):
    from robolearn.skills.execute import load_skill_policy

    with pytest.raises(SkillError, match="does not exist"):
        load_skill_policy(str(tmp_path / "missing"))


def test_policy_instruction_prefers_the_skill_template():
    s = _policy_skill("pick", "x", instruction="grab the {obj} now")
    assert execute.policy_instruction(s, {"obj": "red_block"}) == "grab the red block now"
    s = _policy_skill("pick", "x")
    assert execute.policy_instruction(s, {"obj": "red_block"}) == "pick up the red block"
