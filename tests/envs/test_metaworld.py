"""MetaWorld as an env backend: its experts succeed on our MuJoCo, collection writes a valid
store, and robolearn-eval scores a trained policy with MetaWorld's own success signal."""

import json

import numpy as np
import pytest

from robolearn import keys as K

pytest.importorskip("metaworld", reason="metaworld not installed (make setup installs it "
                                        "with --no-deps)")
pytestmark = pytest.mark.sim


@pytest.mark.parametrize("name", ["reach-v3", "push-v3", "drawer-close-v3",
                                  "button-press-topdown-v3"])
def test_metaworld_experts_succeed_on_this_mujoco(name):
    from robolearn.envs.metaworld import MetaWorldEnv, rollout

    env = MetaWorldEnv("metaworld/" + name)
    try:
        for seed in (0, 1):
            steps, meta = rollout(env, seed)
            assert meta["success"], (name, seed)  # MetaWorld's own success flag
            assert steps[K.OBS_STATE].shape[1] == 39 and steps[K.ACTION].shape[1] == 4
            assert meta["variant"] == seed and meta["fps"] == 80.0
            # sparse reward: 1 on the success step, which ends the episode
            assert steps[K.REWARD].tolist() == [0.0] * (len(steps[K.REWARD]) - 1) + [1.0]
    finally:
        env.close()


def test_failed_episodes_are_sabotaged_as_labelled():
    """offset: the expert sees the puck and goal 8-12 cm away and misses until the horizon;
    stop_short: cut early.  Neither succeeds, and their rewards stay 0."""
    from robolearn.envs.metaworld import MetaWorldEnv, rollout

    env = MetaWorldEnv("metaworld/push-v3", max_episode_steps=150)
    modes = {}
    try:
        for seed in range(6):
            steps, meta = rollout(env, seed, quality="failed")
            modes.setdefault(meta["failure_mode"], []).append(len(steps[K.ACTION]))
            assert not meta["success"] and steps[K.REWARD].sum() == 0
    finally:
        env.close()
    assert set(modes) == {"offset", "stop_short"}
    assert all(n == 150 for n in modes["offset"]) and all(n <= 60 for n in modes["stop_short"])


def test_dart_records_the_experts_actions_while_the_arm_is_pushed_off_its_path():
    from robolearn.envs.metaworld import MetaWorldEnv, rollout

    env = MetaWorldEnv("metaworld/reach-v3", max_episode_steps=40)
    try:
        clean, _ = rollout(env, 3)
        dart, meta = rollout(env, 3, dart=0.3)
    finally:
        env.close()
    assert meta["dart"] == 0.3 and meta["quality"] == "expert"
    assert np.allclose(dart[K.ACTION][0], clean[K.ACTION][0])  # labels: the clean expert's
    n = min(len(clean[K.ACTION]), len(dart[K.ACTION]))
    assert np.abs(dart[K.OBS_STATE][1:n, :3] - clean[K.OBS_STATE][1:n, :3]).max() > 1e-3


def test_seeds_pick_fixed_task_variants_and_bad_settings_are_refused():
    from robolearn.envs.metaworld import MetaWorldEnv

    env = MetaWorldEnv("metaworld/reach-v3")
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=4)
    c, _ = env.reset(seed=53)  # 50 variants: seed 53 is variant 3 again
    assert not np.allclose(a["state"], b["state"]) and np.allclose(a["state"], c["state"])
    env.close()
    # an episode that is over stays over (vector envs step idle workers) instead of raising
    env = MetaWorldEnv("metaworld/reach-v3", max_episode_steps=3)
    env.reset(seed=0)
    outs = [env.step(np.zeros(4)) for _ in range(6)]
    assert [o[3] for o in outs] == [False, False, True, True, True, True]
    np.testing.assert_array_equal(outs[-1][0]["state"], outs[2][0]["state"])
    env.close()
    with pytest.raises(ValueError, match="Sawyer"):
        MetaWorldEnv("metaworld/reach-v3", robot="ur5e")


def test_collect_then_train_then_eval_on_metaworld(tmp_path, capsys):
    from robolearn.cli.collect import main as collect
    from robolearn.cli.eval import main as evaluate
    from robolearn.cli.train import main as train
    from robolearn.data.store import TrajectoryStore

    store = tmp_path / "mw.zarr"
    assert collect(["--task", "metaworld/reach-v3", "--episodes", "3", "--out", str(store),
                    "--cameras", "--no-gif"]) == 0
    with TrajectoryStore.open(str(store)) as st:
        metas = st.all_episode_meta()
        assert [m["task"] for m in metas] == ["metaworld/reach-v3"] * 3
        assert all(m["success"] for m in metas) and st.fps() == 80.0
        assert st.read(K.OBS_STATE).shape[1] == 39
    run = tmp_path / "bc"
    assert train(["train/bc_tiny", f"data.store={store}", f"out_dir={run}", "steps=20",
                  "data.val_ratio=0", "val_every=0", "progress=false"]) == 0
    out = tmp_path / "eval"
    assert evaluate([f"checkpoint={run}", "tasks=[metaworld/reach-v3]", "trials=2",
                     "num_envs=1", "max_steps=60", f"out_dir={out}", "videos=0"]) == 0
    rep = json.loads((out / "report.json").read_text())
    task = rep["tasks"][0]
    assert task["task"] == "metaworld/reach-v3" and task["trials"] == 2
    assert rep["protocol"]["tasks"] == ["metaworld/reach-v3"]
