"""robolearn-collect writes valid, annotated, mixed-quality stores and survives a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from robolearn import keys as K
from robolearn.cli.collect import main
from robolearn.data.store import TrajectoryStore

pytestmark = pytest.mark.sim

SMALL = ["--resolution", "32", "--cameras", "front", "wrist"]


def test_collect_writes_a_valid_annotated_store_and_a_gif(tmp_path):
    out = tmp_path / "run" / "demos.zarr"
    rc = main(["--task", "Reach", "Pick", "--episodes", "2", "--out", str(out), "--seed", "5",
               *SMALL])
    assert rc == 0
    store = TrajectoryStore.open(str(out))
    assert store.n_episodes == 2
    metas = store.all_episode_meta()
    assert [m["task"] for m in metas] == ["Reach", "Pick"]
    assert [m["seed"] for m in metas] == [5, 6]
    assert all(m["success"] and m["quality"] == "expert" for m in metas)
    assert metas[1]["robot"] == "panda" and metas[1]["action_space"] == "joint_pos"
    ep = store.get_episode(1)
    T = len(ep[K.ACTION])
    assert ep[K.image_key("front")].shape == (T, 32, 32, 3)
    assert ep[K.image_key("wrist")].shape == (T, 32, 32, 3)
    assert ep[K.OBS_STATE].shape == (T, 15) and ep[K.ACTION].shape == (T, 8)
    assert ep[K.DONE][-1] and not ep[K.DONE][:-1].any()
    assert ep[K.REWARD][-1] == 1.0  # sparse reward on the success step
    assert set(ep[K.SKILL]) == {"pick(" + metas[1]["task_args"]["obj"] + ")"}
    assert ep[K.LANGUAGE][0].startswith("pick up the")
    # the recorded actions are joint targets the arm then reaches (state lags actions by a step)
    assert np.abs(ep[K.ACTION][:-1, :7] - ep[K.OBS_STATE][1:, :7]).mean() < 0.05
    for task in ("Reach", "Pick"):
        assert (out.parent / f"{task}.gif").stat().st_size > 1000
    summary = json.loads((out.parent / "collect_summary.json").read_text())
    assert summary["tasks"]["Pick"]["successes"] == 1
    store.close()
    # appending continues the same store
    assert main(["--task", "Reach", "--episodes", "1", "--out", str(out), "--seed", "7",
                 "--no-gif", *SMALL]) == 0
    assert TrajectoryStore.open(str(out)).n_episodes == 3


def test_long_horizon_episode_has_per_step_skill_annotations(tmp_path):
    out = tmp_path / "lh.zarr"
    assert main(["--task", "BowlThenCloseDrawer", "--episodes", "1", "--out", str(out),
                 "--cameras", "--no-gif"]) == 0
    store = TrajectoryStore.open(str(out))
    ep, meta = store.get_episode(0), store.all_episode_meta()[0]
    skills = list(dict.fromkeys(ep[K.SKILL]))  # in order of first appearance
    obj = meta["task_args"]["obj"]
    assert skills == [f"pick({obj})", f"place({obj},bowl)", "close_drawer()"]
    assert meta["success"] and "drawer_closed" in meta["final_symbolic_state"]
    assert "then" in meta["instruction"] or "afterwards" in meta["instruction"]


def test_noisy_and_failed_episodes_are_labelled(tmp_path):
    out = tmp_path / "mixed.zarr"
    assert main(["--task", "Pick", "--episodes", "4", "--out", str(out), "--failed-fraction",
                 "1.0", "--cameras", "--no-gif"]) == 0
    metas = TrajectoryStore.open(str(out)).all_episode_meta()
    assert all(m["quality"] == "failed" and m["failure_mode"] in ("offset", "stop_short")
               for m in metas)
    assert sum(m["success"] for m in metas) == 0  # sabotage really fails a pick
    out2 = tmp_path / "noisy.zarr"
    assert main(["--task", "Pick", "--episodes", "2", "--out", str(out2), "--noise", "0.003",
                 "--cameras", "--no-gif"]) == 0
    store = TrajectoryStore.open(str(out2))
    metas = store.all_episode_meta()
    assert all(m["quality"] == "noisy" and m["noise"] == 0.003 for m in metas)
    # noise reached the actions: consecutive joint targets are rougher than the clean expert's
    clean = tmp_path / "clean.zarr"
    main(["--task", "Pick", "--episodes", "1", "--out", str(clean), "--cameras", "--no-gif"])
    jerk = lambda a: np.abs(np.diff(a[:, :7], n=2, axis=0)).mean()  # noqa: E731
    assert jerk(store.get_episode(0)[K.ACTION]) > 2 * jerk(
        TrajectoryStore.open(str(clean)).get_episode(0)[K.ACTION])


def _two_picks(tmp_path, name, *flags):
    """(metas, episodes) of 2 state-only Pick demos collected with ``flags``."""
    out = tmp_path / f"{name}.zarr"
    assert main(["--task", "Pick", "--episodes", "2", "--out", str(out), "--cameras",
                 "--no-gif", *flags]) == 0
    store = TrajectoryStore.open(str(out))
    return store.all_episode_meta(), [store.get_episode(i) for i in range(2)]


def test_dart_perturbs_the_arm_but_records_the_experts_actions(tmp_path):
    """DART: the executed actions carry the noise (the arm strays from the recorded targets
    more than the clean expert's lag), the recorded ones do not (as smooth as the clean
    expert's, unlike --noise at the same std) and the episodes still succeed."""
    jerk = lambda ep: np.abs(np.diff(ep[K.ACTION][:, :7], n=2, axis=0)).mean()  # noqa: E731
    # how far the arm is from the target it was sent on the step before
    stray = lambda ep: np.abs(ep[K.OBS_STATE][1:, :7] - ep[K.ACTION][:-1, :7]).mean()  # noqa
    clean_meta, clean = _two_picks(tmp_path, "clean")
    dart_meta, dart = _two_picks(tmp_path, "dart", "--dart", "0.004")
    _, noisy = _two_picks(tmp_path, "noisy", "--noise", "0.004")
    assert all(m["dart"] == 0.004 and m["quality"] == "expert" and m["success"]
               for m in dart_meta)
    assert all(m["dart"] == 0.0 for m in clean_meta)
    assert np.mean([stray(e) for e in dart]) > 1.3 * np.mean([stray(e) for e in clean])
    assert np.mean([jerk(e) for e in dart]) < 1.5 * np.mean([jerk(e) for e in clean])
    assert np.mean([jerk(e) for e in noisy]) > 3 * np.mean([jerk(e) for e in dart])
    with pytest.raises(SystemExit, match="--dart must be >= 0"):
        main(["--task", "Reach", "--dart", "-1", "--out", str(tmp_path / "never.zarr")])


def test_regrasp_demos_show_a_failed_grasp_and_the_experts_second_one(tmp_path):
    """--regrasp: the cube slips out of the first grasp, the expert lifts the empty gripper,
    opens it and grasps again; the episode still succeeds and says so in its meta."""
    # gripper command: closes (> 0.5) once in a clean demo, twice with a re-grasp between
    closings = lambda ep: int(np.sum(np.diff((ep[K.ACTION][:, -1] > 0.5).astype(int)) == 1))  # noqa
    clean_meta, clean = _two_picks(tmp_path, "clean")
    rg_meta, rg = _two_picks(tmp_path, "regrasp", "--regrasp", "1")
    assert all(m["success"] and not m["regrasp"] for m in clean_meta)
    assert all(m["success"] and m["regrasp"] and m["quality"] == "expert" for m in rg_meta)
    assert [closings(e) for e in clean] == [1, 1] and [closings(e) for e in rg] == [2, 2]
    assert all(len(r[K.ACTION]) > len(c[K.ACTION]) + 15 for r, c in zip(rg, clean))
    with pytest.raises(SystemExit, match="regrasp must be in"):
        main(["--task", "Pick", "--regrasp", "2", "--out", str(tmp_path / "never.zarr")])
    with pytest.raises(SystemExit, match="--regrasp makes the tabletop pick expert re-grasp"):
        main(["--task", "pusht", "--regrasp", "0.5", "--out", str(tmp_path / "never.zarr")])


def test_scene_state_is_recorded_beside_the_state_and_served_to_training(tmp_path):
    """--scene-state: every step also records the scene's object positions (16 values); the
    picked cube's height rises with the lift, the arm's state is unchanged, and training
    windows carry it (a target for auxiliary losses, not an input)."""
    from robolearn.data.dataset import WindowDataset
    from robolearn.envs.scene import CUBES
    from robolearn.envs.tabletop_env import OBJECT_STATE_DIM

    metas, eps = _two_picks(tmp_path, "scene", "--scene-state")
    _, plain = _two_picks(tmp_path, "plain")
    for meta, ep, p in zip(metas, eps, plain):
        scene = ep[K.OBS_ENV_STATE]
        assert scene.shape == (len(ep[K.ACTION]), OBJECT_STATE_DIM)
        np.testing.assert_array_equal(ep[K.OBS_STATE], p[K.OBS_STATE])
        cube = list(CUBES).index(meta["task_args"]["obj"])  # the sim's cube order
        z = scene[:, 3 * cube + 2]
        assert z[-1] > z[0] + 0.05  # the named cube was lifted
        others = [c for c in range(3) if c != cube]
        assert all(abs(scene[-1, 3 * c + 2] - scene[0, 3 * c + 2]) < 0.01 for c in others)
    ds = WindowDataset(str(tmp_path / "scene.zarr"), n_obs=2, horizon=4, images=False)
    assert ds[5][K.OBS_ENV_STATE].shape == (2, OBJECT_STATE_DIM)
    assert K.OBS_ENV_STATE not in WindowDataset(str(tmp_path / "plain.zarr"), n_obs=2,
                                                horizon=4, images=False)[5]
    with pytest.raises(SystemExit, match="--scene-state records the tabletop"):
        main(["--task", "pusht", "--scene-state", "--out", str(tmp_path / "never.zarr")])


def test_scene_state_records_where_each_camera_sees_the_objects(tmp_path):
    """--scene-state with cameras also records observation.keypoints.<camera>: where the
    camera images each cube, the bowl, the pad and the end effector (u, v, in view). The
    rendered images agree: at a cube's point the image has that cube's colour, in both the
    fixed (jittered) front camera and the moving wrist camera; training windows with
    images carry the points of the cameras they read."""
    from robolearn.data.dataset import WindowDataset
    from robolearn.envs.scene import CUBES

    out = tmp_path / "kp.zarr"
    assert main(["--task", "Pick", "--episodes", "1", "--out", str(out), "--no-gif",
                 "--scene-state"]) == 0
    ep = TrajectoryStore.open(str(out)).get_episode(0)
    n = len(ep[K.ACTION])
    checked = 0
    for cam in ("front", "wrist"):
        kp, img = ep[K.keypoints_key(cam)], ep[K.image_key(cam)]
        assert kp.shape == (n, 6, 3) and kp.dtype == np.float32
        assert set(np.unique(kp[..., 2])) <= {0.0, 1.0}
        side = img.shape[1]
        for t in (0, n // 3):  # before the grasp: no cube is held
            for c, name in enumerate(CUBES):
                u, v, seen = kp[t, c]
                if not seen:
                    continue
                rgb = img[t, int(v * side), int(u * side)].astype(int)
                # red, green and blue cubes, in the sim's cube order
                want = {"red": 0, "green": 1, "blue": 2}[name.split("_")[0]]
                assert rgb.argmax() == want, (cam, t, name, rgb)
                checked += 1
    assert checked >= 8
    # the wrist camera rides on the hand: its points move as the arm does, the front's stay
    front, wrist = ep[K.keypoints_key("front")], ep[K.keypoints_key("wrist")]
    assert np.abs(np.diff(wrist[: n // 3, :3, :2], axis=0)).max() > 0.02
    assert np.abs(np.diff(front[: n // 3, :3, :2], axis=0)).max() < 1e-4
    ds = WindowDataset(str(out), n_obs=2, horizon=4)
    item = ds[3]
    for cam in ("front", "wrist"):
        assert item[K.keypoints_key(cam)].shape == (2, 6, 3)


def test_bad_arguments_are_clear(capsys):
    with pytest.raises(SystemExit, match="unknown task"):
        main(["--task", "Juggle", "--episodes", "1", "--out", "/tmp/never.zarr"])
    with pytest.raises(SystemExit, match="failed_fraction"):
        main(["--task", "Reach", "--failed-fraction", "2", "--out", "/tmp/never.zarr"])


def test_preset_and_overrides(tmp_path):
    out = tmp_path / "p.zarr"
    assert main(["--preset", "collect/pickplace", f"out={out}", "episodes=1", "gif=false",
                 "env.cameras.names=[]"]) == 0
    assert TrajectoryStore.open(str(out)).all_episode_meta()[0]["task"] == "PickPlace"


def test_killed_collection_leaves_a_valid_store(tmp_path):
    out = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "robolearn.cli.collect", "--task", "Reach", "--episodes", "50",
           "--out", str(out), "--cameras", "front", "--resolution", "32", "--no-gif"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            time.sleep(1.0)
            try:
                with TrajectoryStore.open(str(out)) as s:
                    if s.n_episodes >= 2:
                        break
            except Exception:  # noqa: BLE001 - not created yet
                pass
        os.kill(proc.pid, signal.SIGKILL)  # mid-episode, most likely
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = TrajectoryStore.open(str(out), mode="a")  # repairs a half-written tail
    n = store.n_episodes
    assert n >= 2
    for i in range(n):
        ep = store.get_episode(i)
        assert len(ep[K.ACTION]) == len(ep[K.image_key("front")]) > 0
    store.close()
    # and collection continues where it stopped
    assert main(["--task", "Reach", "--episodes", "1", "--out", str(out), "--seed", str(n),
                 "--cameras", "front", "--resolution", "32", "--no-gif"]) == 0
    assert TrajectoryStore.open(str(out)).n_episodes == n + 1


def _interrupted_collection(out, episodes_before: int, *flags) -> tuple[int, str]:
    """Ctrl-C (SIGINT to the collector) once ``out`` holds ``episodes_before`` episodes:
    (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "robolearn.cli.collect", "--task", "Reach",
                             # far more than can finish before the signal, even when the
                             # reader below is starved of CPU (50 once raced to completion)
                             "--episodes", "5000", "--out", str(out), "--cameras", "--no-gif",
                             *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a suite started in the background (nohup,
                            # `cmd &`) runs with SIGINT ignored, and children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            with TrajectoryStore.open(str(out)) as s:
                if s.n_episodes >= episodes_before:
                    break
        except Exception:  # noqa: BLE001
            pass
    proc.send_signal(signal.SIGINT)  # the collector only, as a kill -INT would
    _, err = proc.communicate(timeout=60)  # returns only once any workers stopped too
    return proc.returncode, err


def test_ctrl_c_keeps_finished_episodes(tmp_path):
    out = tmp_path / "int.zarr"
    rc, err = _interrupted_collection(out, 1)
    assert rc == 130 and "interrupted" in err
    assert TrajectoryStore.open(str(out)).n_episodes >= 1


def test_collect_module_is_import_light():
    code = "import sys, robolearn.cli.collect; print('mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tasks_come_from_the_backend_registry(capsys):
    """Every tool looks tasks up in one registry: the tabletop and MetaWorld are backends."""
    from robolearn.envs.backends import backend_for, backends

    assert [b.name for b in backends()][:2] == ["tabletop", "metaworld"]
    assert backend_for("PickPlace").name == "tabletop"
    assert backend_for("metaworld/push-v3").name == "metaworld"
    assert backend_for("PickPlace").horizon("PickPlace") == 160
    assert backend_for("metaworld/push-v3").horizon("metaworld/push-v3") == 500
    with pytest.raises(KeyError, match="metaworld/<env-name>"):
        backend_for("Juggle")
    assert main(["--list-tasks"]) == 0
    out = capsys.readouterr().out
    assert "tabletop:" in out and "metaworld:" in out and "metaworld/pick-place-v3" in out


def test_place_demos_record_the_release_not_only_its_first_step():
    """A place succeeds on the first step the gripper opens; the expert's release and retreat
    after it are recorded too (``SUCCESS_TAIL`` steps), so a policy sees more than one frame
    of letting go, and the success still holds at the end."""
    import robolearn.envs as E
    from robolearn.envs.demos import SUCCESS_TAIL, rollout

    env = E.make_env("PickPlace", cameras={"names": []})
    try:
        steps, meta = rollout(env, 0)
        short, _ = rollout(env, 0, success_tail=0)
    finally:
        env.close()
    assert meta["success"]
    n = len(short[K.ACTION])
    assert len(steps[K.ACTION]) == n + SUCCESS_TAIL
    np.testing.assert_array_equal(steps[K.ACTION][:n], short[K.ACTION])  # same episode
    assert (steps[K.ACTION][n - 1:, -1] < 0.5).all()  # open from the success step on
    assert short[K.REWARD][-1] == 1 and (steps[K.REWARD][n - 1:] == 1).all()
    assert steps[K.DONE][-1] and not steps[K.DONE][:-1].any()


def test_scene_frames_keep_labelled_steps_that_never_train_actions(tmp_path):
    """--scene-frames N: each episode keeps N of the expert's steps (the same steps as a
    full --scene-state episode of that seed, with their object positions), marked as
    perception data; such frames and demos never share a store, and robolearn-train
    learns no actions from them (only flow_vla's perception stage takes them)."""
    from robolearn.cli.train import main as train

    metas, frames = _two_picks(tmp_path, "frames", "--scene-frames", "5")
    _, full = _two_picks(tmp_path, "full", "--scene-state")
    for meta, ep, whole in zip(metas, frames, full):
        assert meta["scene_frames"] == 5 and meta["source"] == "sim/scene_frames"
        assert len(ep[K.ACTION]) == 5 and ep[K.DONE].tolist() == [False] * 4 + [True]
        # every kept step is one of the full episode's steps, labels included, in order
        rows = [int(np.flatnonzero((whole[K.OBS_STATE] == s).all(1))[0])
                for s in ep[K.OBS_STATE]]
        assert rows == sorted(set(rows))
        np.testing.assert_array_equal(ep[K.OBS_ENV_STATE], whole[K.OBS_ENV_STATE][rows])
        np.testing.assert_array_equal(ep[K.ACTION], whole[K.ACTION][rows])
    with pytest.raises(SystemExit, match="holds perception frames .* new --out"):
        main(["--task", "Pick", "--episodes", "1", "--out", str(tmp_path / "frames.zarr"),
              "--cameras", "--no-gif"])
    with pytest.raises(SystemExit, match="holds demonstrations; scene frames go into"):
        main(["--task", "Pick", "--episodes", "1", "--out", str(tmp_path / "full.zarr"),
              "--cameras", "--no-gif", "--scene-frames", "3"])
    assert TrajectoryStore.open(str(tmp_path / "full.zarr")).n_episodes == 2  # nothing lost
    with pytest.raises(SystemExit, match="--scene-frames must be >= 0"):
        main(["--task", "Pick", "--scene-frames", "-1", "--out", str(tmp_path / "n.zarr")])
    with pytest.raises(SystemExit, match="holds perception frames .* policy.init_from"):
        train(["train/bc_tiny", f"data.store={tmp_path / 'frames.zarr'}",
               f"out_dir={tmp_path / 'bc'}"])


def test_scene_frames_render_only_the_kept_steps_and_draw_them_exactly(tmp_path):
    """--scene-frames renders its few kept steps after the episode, from snapshots of the
    sim, instead of every step: the images are bit-identical to those a full --scene-state
    episode of the same seed observed at those steps."""
    eps = {}
    for name, flags in (("frames", ["--scene-frames", "6"]), ("full", ["--scene-state"])):
        out = tmp_path / f"{name}.zarr"
        assert main(["--task", "Pick", "--episodes", "1", "--out", str(out), "--cameras",
                     "front", "wrist", "--resolution", "32", "--no-gif", *flags]) == 0
        eps[name] = TrajectoryStore.open(str(out)).get_episode(0)
    ep, whole = eps["frames"], eps["full"]
    rows = [int(np.flatnonzero((whole[K.OBS_STATE] == s).all(1))[0]) for s in ep[K.OBS_STATE]]
    assert len(rows) == 6 and rows[-1] > rows[0]
    for cam in ("front", "wrist"):
        key = K.image_key(cam)
        np.testing.assert_array_equal(ep[key], whole[key][rows])
        assert len({im.tobytes() for im in ep[key]}) > 1  # the scene moves between them


def test_workers_write_the_store_one_process_writes(tmp_path):
    # two processes, each with its own sim, yet the same episodes in the same (seed) order,
    # the same meta, and each task's GIF from its first expert episode
    args = ["--task", "Reach", "Pick", "--episodes", "4", "--seed", "3", "--noise", "0.01",
            "--noisy-fraction", "0.5", *SMALL]
    one, two = tmp_path / "one" / "d.zarr", tmp_path / "two" / "d.zarr"
    assert main([*args, "--out", str(one)]) == 0
    assert main([*args, "--out", str(two), "--workers", "2"]) == 0
    a, b = TrajectoryStore.open(str(one)), TrajectoryStore.open(str(two))
    assert a.n_episodes == b.n_episodes == 4
    assert a.all_episode_meta() == b.all_episode_meta()
    for i in range(4):
        ea, eb = a.get_episode(i), b.get_episode(i)
        assert ea.keys() == eb.keys()
        for k in ea:
            assert np.array_equal(np.asarray(ea[k]), np.asarray(eb[k])), (i, k)
    for task in ("Reach", "Pick"):
        assert (one.parent / f"{task}.gif").read_bytes() == (two.parent / f"{task}.gif").read_bytes()
    summary = json.loads((two.parent / "collect_summary.json").read_text())
    assert summary["workers"] == 2 and summary["episodes_written"] == 4


def test_ctrl_c_stops_the_workers_and_keeps_finished_episodes(tmp_path):
    out = tmp_path / "int.zarr"
    rc, err = _interrupted_collection(out, 2, "--workers", "2")
    assert rc == 130 and "interrupted" in err
    store = TrajectoryStore.open(str(out))
    n = store.n_episodes
    assert n >= 2 and [m["seed"] for m in store.all_episode_meta()] == list(range(n))


def test_bad_worker_count_is_refused(capsys):
    with pytest.raises(SystemExit, match="--workers must be >= 1"):
        main(["--task", "Reach", "--episodes", "1", "--workers", "0", "--out", "x.zarr"])
