"""SPRINT: tasks from skill annotations (relabelled chains, cross-trajectory chains), the
windows they produce, and IQL valuing a chain no trajectory demonstrated."""

import numpy as np
import pytest
import torch

from robolearn import keys as K
from robolearn.data.dataset import SegmentTask, WindowDataset
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store, synthetic_meta
from robolearn.skills.seed import primitive_skills
from robolearn.skills.sprint import sprint_tasks, summarise_tasks

REACH = "move the gripper above the target"
PICK = "pick up the obj"


@pytest.fixture
def skills():
    return {s.name: s for s in primitive_skills()}


def test_tasks_cover_skills_relabelled_and_cross_trajectory_chains(tmp_path, skills):
    # three episodes of reach-then-pick; episode 0 failed (its pick was not completed)
    store = make_synthetic_store(tmp_path / "d.zarr", lengths=(10, 6, 8), cameras=())
    tasks = sprint_tasks(store, skills, chains_per_segment=1)
    assert summarise_tasks(tasks) == {"episode": 3, "skill": 6, "chain": 3,
                                      "cross_trajectory": 5}
    mine = {(t.episode, t.start, t.stop, t.instruction): t for t in tasks}
    assert mine[(0, 0, 5, REACH)].reward_at_end  # followed by pick: completed
    assert not mine[(0, 5, 10, PICK)].reward_at_end  # last segment of a failed episode
    assert mine[(1, 3, 6, PICK)].reward_at_end
    assert not mine[(0, 0, 10, f"{REACH}, then {PICK}")].reward_at_end
    assert mine[(2, 0, 8, f"{REACH}, then {PICK}")].reward_at_end
    cross = [t for t in tasks if t.next_instruction is not None]
    # every completed segment, chained to the other skill the store knows
    assert sorted((t.episode, t.start) for t in cross) == [(0, 0), (1, 0), (1, 3), (2, 0), (2, 4)]
    for t in cross:
        first, nxt = (REACH, PICK) if t.start == 0 else (PICK, REACH)
        assert t.instruction == f"{first}, then {nxt}" and t.next_instruction == nxt
        assert not t.reward_at_end
    # stored (LLM) relabels replace the template chains
    store.close()
    from robolearn.skills.relabel import relabel_store

    rows = relabel_store(str(tmp_path / "d.zarr"), skills)
    with TrajectoryStore.open(tmp_path / "d.zarr", "a") as st:
        rows[1]["instruction"] = "do the two things"
        st.set_attr("skill_relabels", rows)
        tasks = sprint_tasks(st, skills, chains_per_segment=0)
    assert any(t.instruction == "do the two things" and (t.episode, t.start, t.stop) == (1, 0, 6)
               and t.reward_at_end for t in tasks)
    assert not any(t.next_instruction for t in tasks)


def test_chains_are_built_without_a_skill_library(tmp_path):
    """Labels outside any library still chain, spelled out (the CLI passes the primitives,
    a user's own labels need not be among them)."""
    store = make_synthetic_store(tmp_path / "d.zarr", lengths=(10, 6), cameras=())
    tasks = sprint_tasks(store, None, chains_per_segment=0)
    chains = {(t.episode, t.start, t.stop): t.instruction for t in tasks if t.kind == "chain"}
    assert chains == {(0, 0, 10): "reach, then pick", (1, 0, 6): "reach, then pick"}


def test_a_store_without_skill_labels_is_refused(tmp_path):
    st = TrajectoryStore.create(tmp_path / "s.zarr")
    st.append_episode({K.OBS_STATE: np.zeros((3, 2), np.float32),
                       K.ACTION: np.zeros((3, 1), np.float32),
                       K.REWARD: np.zeros(3, np.float32), K.DONE: np.zeros(3, bool)},
                      synthetic_meta(1))
    with pytest.raises(ValueError, match="skill"):
        sprint_tasks(st)


def test_windows_take_the_task_instruction_reward_and_bootstrap(tmp_path, skills):
    store = make_synthetic_store(tmp_path / "d.zarr", lengths=(10, 6), cameras=())
    chain = SegmentTask(1, 0, 3, "reach, then pick", next_instruction="pick it")
    skill = SegmentTask(1, 0, 3, "reach it", reward_at_end=True)
    ds = WindowDataset(store, n_obs=1, horizon=4, future_offset=4,
                       tasks=[SegmentTask(0, 0, 10), chain, skill])
    assert len(ds) == 10 + 3 + 3
    b = ds.__getitems__([12, 15, 9])  # chain @ step 2, skill @ step 2, episode 0 @ step 9
    assert b[K.LANGUAGE] == ["reach, then pick", "reach it", "task 0"]
    assert b[K.pad_key(K.ACTION)][0].tolist() == [False, True, True, True]  # segment ends
    assert b[K.REWARD][0].tolist() == [0, 0, 0, 0]
    assert b[K.REWARD][1].tolist() == [1, 0, 0, 0]  # the skill was done on its last step
    assert b[K.REWARD][2].tolist()[0] == 1.0  # the store's own reward (success at the end)
    assert b[K.next_key(K.LANGUAGE)] == ["pick it", "reach it", "task 0"]
    assert b[K.NEXT_STEPS].tolist() == [1, 1, 0]
    assert b[K.NEXT_DONE].tolist() == [False, True, True]  # a chain continues past its end
    # the end state is the first state after the segment: global step 10 + 3
    state = store.read(K.OBS_STATE)
    assert torch.equal(b[K.next_key(K.OBS_STATE)][0, -1], torch.from_numpy(state[13]))


def _episode(states, actions, labels, success):
    n = len(states)
    steps = {K.OBS_STATE: np.array(states, np.float32)[:, None],
             K.ACTION: np.array(actions, np.float32)[:, None],
             K.REWARD: np.array([float(success and i == n - 1) for i in range(n)], np.float32),
             K.DONE: np.arange(n) == n - 1, K.LANGUAGE: ["demo"] * n, K.SKILL: list(labels)}
    return steps, synthetic_meta(1, success=success)


def test_iql_values_a_chain_no_trajectory_demonstrated(tmp_path):
    """Trajectory A only reaches (x: 0 -> 0.5 -> 1); trajectory B only picks from x = 1
    (1 -> 1.5, success).  Nobody did reach-then-pick, but chaining values A's end state
    under pick: V(1, pick) = gamma, so V(0.5, chain) = gamma^2 and V(0, chain) = gamma^3."""
    from robolearn.policies.iql.config import IQLConfig
    from robolearn.policies.iql.model import IQLPolicy
    from robolearn.policies.testing import fit_batch

    st = TrajectoryStore.create(tmp_path / "mdp.zarr")
    st.append_episode(*_episode([0.0, 0.5, 1.0], [1, 1, 0], ["reach", "reach", ""], True))
    st.append_episode(*_episode([1.0, 1.5], [1, 1], ["pick", "pick"], True))
    tasks = sprint_tasks(st, chains_per_segment=1, keep_episodes=False)
    ds = WindowDataset(st, n_obs=1, horizon=1, future_offset=1, tasks=tasks)
    gamma = 0.9
    cfg = IQLConfig(n_obs=1, horizon=1, n_action_steps=1, state_dim=1, action_dim=1,
                    hidden_dim=64, n_layers=2, lang_dim=16, gamma=gamma, expectile=0.7,
                    target_tau=0.05, state_norm="identity", action_norm="identity")
    stats = {k: {"mean": [0.0], "std": [1.0], "min": [-1.0], "max": [1.0]}
             for k in (K.OBS_STATE, K.ACTION)}
    torch.manual_seed(0)
    model = IQLPolicy(cfg, stats)
    batch = ds.__getitems__(list(range(len(ds))))
    fit_batch(model, batch, 1500, lr=3e-3)
    chain = "reach, then pick"

    def v(x, text):
        return model.value_of({K.OBS_STATE: torch.tensor([[[x]]]), K.LANGUAGE: [text]}).item()

    assert v(1.0, "pick") == pytest.approx(gamma, abs=0.03)
    assert v(0.5, chain) == pytest.approx(gamma ** 2, abs=0.04)
    assert v(0.0, chain) == pytest.approx(gamma ** 3, abs=0.05)
    assert v(0.5, "reach") == pytest.approx(1.0, abs=0.03)  # reach alone ends at 0.5 -> 1
