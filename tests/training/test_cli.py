"""robolearn-train end to end on a real (tiny) Zarr store, presets, and import hygiene."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from robolearn import keys as K
from robolearn.cli.train import main
from robolearn.config import compose, list_presets
from robolearn.policies import get_config_class, list_policies, load_policy
from robolearn.training.checkpoint import latest_checkpoint


@pytest.fixture
def tiny_store(tmp_path):
    from robolearn.data.store import TrajectoryStore

    url = tmp_path / "demos.zarr"
    st = TrajectoryStore.create(url)
    rng = np.random.default_rng(0)
    for i, n in enumerate([7, 12, 9, 15, 10]):  # unequal lengths
        s = rng.normal(size=(n, 3)).astype(np.float32)
        st.append_episode(
            {K.OBS_STATE: s, K.ACTION: np.tanh(s[:, :2]), K.REWARD: np.zeros(n, np.float32),
             K.DONE: np.arange(n) == n - 1,
             K.image_key("front"): rng.integers(0, 255, (n, 20, 20, 3), dtype=np.uint8),
             K.LANGUAGE: ["pick up the cube", "place it"][i % 2], K.SKILL: "pick"},
            {K.META_TASK: "PickPlace", K.META_INSTRUCTION: "pick up the cube",
             K.META_SUCCESS: i != 3, K.META_ROBOT: "panda", K.META_FPS: 10,
             K.META_ACTION_SPACE: "joint_pos", K.META_SOURCE: "test"})
    st.close()
    return str(url)


@pytest.mark.parametrize("name", list_policies())
def test_tiny_presets_equal_the_tiny_configs(name):
    cfg = compose(f"train/{name}_tiny", ["data.store=x"])
    assert cfg.policy == get_config_class(name).tiny()
    assert (cfg.data.n_obs, cfg.data.horizon) == (cfg.policy.n_obs, cfg.policy.horizon)
    assert f"train/{name}" in list_presets()


@pytest.mark.parametrize("name", ["bc", "flow_vla", "iql"])
def test_cli_trains_on_a_store_and_the_checkpoint_predicts(name, tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main([f"train/{name}_tiny", f"data.store={tiny_store}", "steps=3", f"out_dir={out}",
               "data.batch_size=4", "data.val_ratio=0.2", "val_every=3", "progress=false"])
    assert rc == 0 and "done: step 3" in capsys.readouterr().out
    policy = load_policy(latest_checkpoint(out) / "policy_ema")
    # the run folder and its step folder load the same (EMA) weights
    for folder in (out, latest_checkpoint(out)):
        same = load_policy(folder).state_dict()
        assert all(torch.equal(v, same[k]) for k, v in policy.state_dict().items())
    assert policy.config.image_keys == [K.image_key("front")]
    assert policy.config.state_dim == 3 and policy.config.action_dim == 2
    obs = {K.OBS_STATE: np.zeros((1, 3), np.float32),
           K.image_key("front"): np.zeros((1, 3, 20, 20), np.uint8), K.LANGUAGE: ["pick"]}
    a = policy.select_action({k: torch.as_tensor(v) if k != K.LANGUAGE else v
                              for k, v in obs.items()})
    assert a.shape == (1, 2) and torch.isfinite(a).all()


def test_success_only_trains_on_the_successful_episodes(tiny_store, tmp_path, capsys):
    from robolearn.cli.train import build_datasets

    cfg = compose("train/bc_tiny", [f"data.store={tiny_store}", "data.val_ratio=0",
                                    "data.success_only=true"])
    train, _, _ = build_datasets(cfg)
    assert "4 of 5 episodes succeeded" in capsys.readouterr().out
    assert sorted(train.index.episodes.tolist()) == [0, 1, 2, 4]  # episode 3 failed


def test_cli_errors_are_one_line(capsys):
    assert main(["train/nope"]) == 2
    assert "valid: train/bc" in capsys.readouterr().err
    assert main(["train/bc_tiny"]) == 2
    assert "data.store is not set" in capsys.readouterr().err
    assert main(["train/bc_tiny", "data.store=x", "policy.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err
    # the policy stage after a perception stage keeps it frozen: it needs that run
    assert main(["train/flow_vla_from_perception", "data.store=x"]) == 2
    assert "policy.init_from is not set" in capsys.readouterr().err


def test_policy_and_training_configs_import_without_torch():
    code = ("import sys, robolearn.policies, robolearn.training.config, robolearn.cli.train; "
            "print(' '.join(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_iql_trains_on_sprint_tasks_and_resumes(tmp_path, capsys):
    """data.sprint=true: skill segments, relabelled and cross-trajectory chains from the
    store's skill labels; two steps, stop, resume to four."""
    from robolearn.data.testing import make_synthetic_store

    store = tmp_path / "skills.zarr"
    make_synthetic_store(store, lengths=(12, 9, 10)).close()  # reach then pick, each
    out = tmp_path / "run"
    args = ["train/iql_tiny", f"data.store={store}", f"out_dir={out}", "data.batch_size=4",
            "data.val_ratio=0", "val_every=0", "progress=false", "data.sprint=true",
            "save_every=2"]
    assert main(args + ["steps=2"]) == 0
    log = capsys.readouterr().out
    assert ("data.sprint: {'episode': 3, 'skill': 6, 'chain': 3, 'cross_trajectory': 5}"
            in log)
    assert main(args + ["steps=4", "resume=true"]) == 0
    assert "done: step 4" in capsys.readouterr().out
    assert latest_checkpoint(out).name.endswith("4")


def test_episode_instructions_replace_the_step_language(tmp_path):
    """data.instruction=episode: every window is told its episode's whole instruction."""
    from robolearn.cli.train import build_datasets
    from robolearn.data.testing import make_synthetic_store

    store = tmp_path / "s.zarr"
    make_synthetic_store(store, lengths=(6, 5), cameras=()).close()
    cfg = compose("train/bc_tiny", [f"data.store={store}", "data.val_ratio=0",
                                    "data.instruction=episode"])
    train, _, _ = build_datasets(cfg)
    b = train.__getitems__(list(range(len(train))))
    assert len(train) == 11 and set(b[K.LANGUAGE]) == {"task 0", "task 1"}
    assert b[K.REWARD][:6, 0].tolist() == [0] * 6  # episode 0 failed: no success reward
    assert b[K.REWARD][10, 0] == 1.0  # episode 1 succeeded on its last step
    bad = compose("train/bc_tiny", [f"data.store={store}", "data.instruction=plan"])
    with pytest.raises(SystemExit, match="step or episode"):
        build_datasets(bad)
