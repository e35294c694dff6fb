"""Gymnasium contract of every registered tabletop env: check_env, spaces, seeding, info."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robolearn.envs as E
from robolearn.envs.tasks import TASKS

from .conftest import make_env

pytestmark = [pytest.mark.sim,
              pytest.mark.filterwarnings("ignore:.*symmetric and normalized:UserWarning")]


def test_every_task_is_registered():
    assert sorted(E.ENV_IDS) == sorted(f"robolearn/{t}-v0" for t in TASKS)
    for eid in E.ENV_IDS:
        assert gym.spec(eid).max_episode_steps > 0


@pytest.mark.parametrize("env_id", E.ENV_IDS)
def test_check_env_passes(env_id):
    env = gym.make(env_id, cameras={"names": ["front", "wrist"], "resolution": 32})
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("kw", [dict(action_space="ee_delta"), dict(robot="ur5e")])
def test_check_env_passes_for_variants(kw):
    env = make_env("PickPlace", cameras=("wrist",), **kw)
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_check_env_render_mode():
    env = gym.make("robolearn/Push-v0", render_mode="rgb_array",
                   cameras={"names": ["front"], "resolution": 32})
    try:
        check_env(env.unwrapped)  # includes gymnasium's render checks
    finally:
        env.close()


def test_observation_and_action_layout(env_factory):
    env = env_factory("Pick", cameras=("front", "overhead", "wrist"), resolution=48)
    obs, info = env.reset(seed=0)
    assert set(obs["images"]) == {"front", "overhead", "wrist"}
    assert all(im.shape == (48, 48, 3) and im.dtype == np.uint8 for im in obs["images"].values())
    assert obs["joint_pos"].shape == (7,) and obs["gripper"].shape == (1,)
    assert obs["ee_pose"].shape == (7,) and abs(np.linalg.norm(obs["ee_pose"][3:]) - 1) < 1e-5
    assert env.action_space.shape == (8,)  # 7 joint targets + gripper
    assert set(info) >= {"success", "symbolic_state", "instruction", "task", "task_args"}
    assert info["task_args"]["obj"] in info["instruction"].replace(" ", "_")
    facts = info["symbolic_state"]["facts"]
    assert "gripper_empty" in facts and "drawer_closed" in facts
    ur = env_factory("Pick", robot="ur5e")
    assert ur.action_space.shape == (7,)  # 6 joints + gripper


def test_images_look_at_the_scene(env_factory):
    env = env_factory("Pick", cameras=("front", "wrist"), resolution=64)
    obs, _ = env.reset(seed=1)
    for cam, im in obs["images"].items():
        assert im.std() > 10, f"{cam} image is flat"  # rendered something, not a blank buffer
    env2 = env_factory("Pick", cameras=("front",), resolution=64, render_mode="rgb_array")
    env2.reset(seed=1)
    frame = env2.render()
    assert frame.shape == (240, 320, 3) and frame.std() > 10


def test_same_seed_same_episode_different_seed_different_scene(env_factory):
    env = env_factory("PickPlace", cameras=("front",), resolution=32)
    a, info_a = env.reset(seed=7)
    act = env.action_space.sample()
    a2 = env.step(act)[0]
    b, info_b = env.reset(seed=7)
    b2 = env.step(act)[0]
    for x, y in ((a, b), (a2, b2)):
        assert np.array_equal(x["images"]["front"], y["images"]["front"])
        assert np.array_equal(x["joint_pos"], y["joint_pos"])
    assert info_a["instruction"] == info_b["instruction"]
    assert info_a["symbolic_state"]["positions"] == info_b["symbolic_state"]["positions"]
    c, info_c = env.reset(seed=8)
    assert info_c["symbolic_state"]["positions"] != info_a["symbolic_state"]["positions"]
    assert not np.array_equal(c["images"]["front"], a["images"]["front"])


def test_randomisation_changes_colours_lights_and_cameras(env_factory):
    env = env_factory("Pick")
    m = env.sim.model
    env.reset(seed=1)
    snap = (m.geom_rgba.copy(), m.light_dir.copy(), m.cam_pos.copy())
    env.reset(seed=2)
    assert not np.allclose(snap[0], m.geom_rgba)
    assert not np.allclose(snap[1], m.light_dir)
    assert not np.allclose(snap[2], m.cam_pos)
    # the red block stays red: jitter never swaps colour identity
    red = m.geom_rgba[m.geom("red_block").id]
    assert red[0] > 0.6 and red[1] < 0.3 and red[2] < 0.3


def test_instructions_are_paraphrased():
    rng = np.random.default_rng(0)
    for task in TASKS.values():
        assert len(task.templates) >= 4
        args = task.sample_args(rng)
        phrasings = {task.instruction(args, np.random.default_rng(s)) for s in range(40)}
        assert len(phrasings) >= 3, task.name


def test_bad_actions_and_options_give_clear_errors(env_factory):
    env = env_factory("Reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    bad = env.action_space.sample()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    with pytest.raises(TypeError, match="unknown env option"):
        make_env("Reach", bogus=1)
    with pytest.raises(KeyError, match="known tasks"):
        make_env("Fly")
    with pytest.raises(ValueError, match="unknown cameras"):
        make_env("Reach", cameras=("side",))


def test_unstable_physics_ends_the_episode_unscored(env_factory, caplog):
    """MuJoCo answers a NaN acceleration by resetting the scene to its defaults (the drawer
    shut, cubes home) and stepping on: that must end the episode as a failure, never score
    the reset world (CloseDrawer would 'succeed'), and say which joint broke."""
    env = env_factory("CloseDrawer")
    obs, _ = env.reset(seed=0)
    hold = np.r_[obs["joint_pos"], 0.0].astype(np.float32)
    assert env.unwrapped.sim.data.qpos[env.unwrapped.sim.drawer_qadr] > 0.05  # starts open
    _, r, term, trunc, info = env.step(hold)
    assert not (term or trunc) and "sim_unstable" not in info
    cube = env.unwrapped.sim.cube_qadr[env.unwrapped.sim.cube_names[0]]
    env.unwrapped.sim.data.qvel[cube - 2] = np.nan  # a free joint: qvel index = qpos - 2
    with caplog.at_level("WARNING", logger="robolearn.envs.tabletop_env"):
        _, r, term, trunc, info = env.step(hold)
    assert trunc and not term and r == 0.0 and info["success"] is False
    assert "velocity" in info["sim_unstable"] and "unstable" in caplog.text
    obs, _ = env.reset(seed=1)  # the next episode is sound again
    assert "sim_unstable" not in env.step(np.r_[obs["joint_pos"], 0.0].astype(np.float32))[4]


def test_contact_reflex_stops_the_hand_pressing_into_the_table(env_factory):
    """A joint target 5 cm below the table top: without the reflex the stiff servos drove
    the closed gripper 2.5 cm into it (and, from a policy that also swung the arm, the
    Robotiq linkage diverged). The reflex stops it near 1 cm, says so in info, and never
    holds a motion that backs out of the contact."""
    from robolearn.envs.control import IKSolver
    from robolearn.envs.sim import REFLEX_DEPTH
    from robolearn.envs.skills import down_mat

    env = env_factory("Pick", randomization={"pose_jitter": 0.03})
    env.reset(seed=0)
    sim = env.unwrapped.sim
    assert not env.step(np.r_[sim.qpos_arm, 0.0].astype(np.float32))[4]["contact_reflex"]
    ik = IKSolver(sim)
    below = ik.solve(np.array([0.45, 0.0, -0.05]), down_mat(0.0), sim.arm_target.copy())
    deepest, reflexes = 0.0, 0
    for _ in range(15):
        _, _, _, trunc, info = env.step(np.r_[below, 1.0].astype(np.float32))
        assert not trunc and "sim_unstable" not in info
        deepest = max(deepest, sim.fixture_penetration())
        reflexes += info["contact_reflex"]
    assert reflexes >= 5 and REFLEX_DEPTH < deepest < REFLEX_DEPTH + 0.005
    above = ik.solve(np.array([0.45, 0.0, 0.25]), down_mat(0.0), sim.arm_target.copy())
    for _ in range(15):
        info = env.step(np.r_[above, 1.0].astype(np.float32))[4]
        assert not info["contact_reflex"]
    assert sim.ee_pos()[2] > 0.2 and sim.fixture_penetration() == 0.0


def test_joint_targets_are_tracked_by_the_servos(env_factory):
    """A joint-target action moves the arm there (position servos + gravity compensation)."""
    env = env_factory("Reach")
    obs, _ = env.reset(seed=0)
    target = obs["joint_pos"] + np.array([0.2, -0.1, 0.1, 0.15, 0.0, -0.1, 0.3], np.float32)
    for _ in range(15):
        obs = env.step(np.r_[target, 0.0].astype(np.float32))[0]
    assert np.abs(obs["joint_pos"] - target).max() < 0.02


def test_ee_delta_action_moves_the_end_effector(env_factory):
    env = env_factory("Reach", action_space="ee_delta")
    obs, _ = env.reset(seed=0)
    p0 = obs["ee_pose"][:3].copy()
    for _ in range(10):
        obs = env.step(np.array([0, 0.5, -0.3, 0, 0, 0, 0], np.float32))[0]
    moved = obs["ee_pose"][:3] - p0
    assert moved[1] > 0.15 and moved[2] < -0.08 and abs(moved[0]) < 0.03


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_async_vector_env(context):
    venv = E.make_vec_env("Reach", 2, context=context, cameras={"names": ["front"],
                                                                "resolution": 32})
    try:
        obs, infos = venv.reset(seed=[3, 4])
        assert obs["images"]["front"].shape == (2, 32, 32, 3)
        assert obs["joint_pos"].shape == (2, 7)
        assert not np.array_equal(obs["images"]["front"][0], obs["images"]["front"][1])
        obs, rew, term, trunc, infos = venv.step(venv.action_space.sample())
        assert rew.shape == (2,) and "success" in infos
    finally:
        venv.close()
    with pytest.raises(ValueError, match="fork"):
        E.make_vec_env("Reach", 2, context="fork")
