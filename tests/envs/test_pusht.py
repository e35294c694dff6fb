"""PushT (gym-pusht) as an env backend: gym-pusht's own starts and metric, the scripted
expert solves it, collection writes a valid store, and robolearn-eval scores a trained
policy with gym-pusht's coverage."""

import json

import numpy as np
import pytest

from robolearn import keys as K

pytest.importorskip("gym_pusht", reason="gym-pusht not installed (pip install -e '.[benchmarks]')")
pytestmark = pytest.mark.sim


def test_observation_and_starts_are_gym_pushts_own():
    """Same seed, same start as gym-pusht; state = its agent_pos + its 8 T keypoints; the
    coverage/score/success in info are its own numbers for the same action sequence."""
    import gymnasium as gym
    import gym_pusht  # noqa: F401

    from robolearn.envs.pusht import PushTEnv, world_points

    ref = gym.make("gym_pusht/PushT-v0", obs_type="environment_state_agent_pos")
    env = PushTEnv(cameras={"names": ["top"], "resolution": 64})
    for seed in (0, 11):
        want, _ = ref.reset(seed=seed)
        obs, info = env.reset(seed=seed)
        np.testing.assert_allclose(obs["state"][:2], want["agent_pos"], atol=1e-3)
        np.testing.assert_allclose(obs["state"][2:], want["environment_state"], atol=1e-3)
        assert obs["images"]["top"].shape == (64, 64, 3) and obs["images"]["top"].dtype == np.uint8
        # our keypoint geometry matches gym-pusht's (the expert plans with it)
        np.testing.assert_allclose(world_points(env.block_pose).reshape(-1),
                                   want["environment_state"], atol=1e-3)
        rng = np.random.default_rng(seed)
        for _ in range(15):
            a = rng.uniform(100, 400, 2)
            w_obs, w_r, w_term, _, w_info = ref.step(a)
            obs, r, term, _, info = env.step(a)
            np.testing.assert_allclose(obs["state"][2:], w_obs["environment_state"], atol=1e-3)
            assert r == pytest.approx(w_r) and info["score"] == pytest.approx(w_r)
            assert info["coverage"] == pytest.approx(w_info["coverage"])
            assert info["success"] == w_term == (w_info["coverage"] > 0.95)
    env.close()
    ref.close()


def test_expert_solves_pusht_with_gym_pushts_success_flag():
    from robolearn.envs.pusht import PushTEnv, rollout

    env = PushTEnv()
    for seed in (3, 9, 11):
        steps, meta = rollout(env, seed)
        assert meta["success"] and meta["score"] == 1.0, seed  # coverage > 0.95
        n = len(steps[K.ACTION])
        assert n < 300 and steps[K.OBS_STATE].shape == (n, 18)
        assert steps[K.ACTION].shape == (n, 2) and steps[K.ACTION].min() >= 0
        assert steps[K.REWARD].tolist() == [0.0] * (n - 1) + [1.0]
        assert meta["fps"] == 10.0 and meta["seed"] == seed
    env.close()


def test_failed_and_noisy_episodes_are_what_they_say():
    from robolearn.envs.pusht import PushTEnv, rollout

    env = PushTEnv(max_episode_steps=70)
    modes = set()
    for seed in range(4):
        steps, meta = rollout(env, seed, quality="failed")
        modes.add(meta["failure_mode"])
        assert not meta["success"] and steps[K.REWARD].sum() == 0
        if meta["failure_mode"] == "stop_short":
            assert len(steps[K.ACTION]) <= 0.6 * 170
    assert modes == {"offset", "stop_short"}
    clean, _ = rollout(env, 9)
    noisy, meta = rollout(env, 9, quality="noisy", noise=0.02)
    assert meta["noise"] == 0.02 and meta["quality"] == "noisy"
    n = min(len(clean[K.ACTION]), len(noisy[K.ACTION]))
    assert not np.allclose(clean[K.ACTION][:n], noisy[K.ACTION][:n])
    # DART: the first label is the clean expert's (noise only on what is executed), yet the
    # agent is pushed off the clean path
    dart, meta = rollout(env, 9, dart=0.02)
    assert meta["dart"] == 0.02 and meta["quality"] == "expert"
    assert np.allclose(dart[K.ACTION][0], clean[K.ACTION][0])
    assert not np.allclose(noisy[K.ACTION][0], clean[K.ACTION][0])
    n = min(len(clean[K.ACTION]), len(dart[K.ACTION]))
    assert not np.allclose(dart[K.OBS_STATE][1:n], clean[K.OBS_STATE][1:n])
    env.close()


def test_bad_settings_are_refused():
    from robolearn.envs.backends import backend_for
    from robolearn.envs.pusht import PushTEnv

    assert backend_for("pusht").name == "pusht"
    with pytest.raises(ValueError, match="one camera, 'top'"):
        PushTEnv(cameras={"names": ["front"]})
    with pytest.raises(ValueError, match="point agent"):
        PushTEnv(robot="ur5e")
    with pytest.raises(KeyError, match="unknown task 'push-t'"):
        backend_for("push-t")
    # an episode that is over stays over (vector envs step idle workers)
    env = PushTEnv(max_episode_steps=2)
    env.reset(seed=0)
    outs = [env.step([256.0, 256.0]) for _ in range(4)]
    assert [o[3] for o in outs] == [False, True, True, True]


def test_collect_then_train_then_eval_on_pusht(tmp_path):
    from robolearn.cli.collect import main as collect
    from robolearn.cli.eval import main as evaluate
    from robolearn.cli.train import main as train
    from robolearn.data.store import TrajectoryStore

    store = tmp_path / "pusht.zarr"
    assert collect(["--preset", "collect/pusht", "episodes=2", f"out={store}", "seed=3",
                    "gif=false"]) == 0
    with TrajectoryStore.open(str(store)) as st:
        metas = st.all_episode_meta()
        assert [m["task"] for m in metas] == ["pusht", "pusht"]
        assert st.fps() == 10.0 and st.read(K.OBS_STATE).shape[1] == 18
        assert st.read(K.image_key("top")).shape[1:] == (96, 96, 3)
    run = tmp_path / "bc"
    assert train(["train/bc_tiny", f"data.store={store}", f"out_dir={run}", "steps=20",
                  "data.val_ratio=0", "val_every=0", "progress=false",
                  "data.images=false"]) == 0
    out = tmp_path / "eval"
    assert evaluate(["--preset", "eval/pusht", f"checkpoint={run}", "trials=3", "num_envs=2",
                     "max_steps=25", f"out_dir={out}", "videos=1"]) == 0
    rep = json.loads((out / "report.json").read_text())
    task = rep["tasks"][0]
    assert task["task"] == "pusht" and task["trials"] == 3
    scores = [t["score"] for t in rep["trials"]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert task["mean_score"] == pytest.approx(np.mean(scores))
    # a state-only policy's video shows gym-pusht's own render
    vids = [t["video"] for t in rep["trials"] if t["video"]]
    assert len(vids) == 1 and vids[0].endswith(".gif")
    md = (out / "report.md").read_text()
    assert "gym-pusht PushT" in md and "mean score" in md
