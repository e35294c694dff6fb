"""Tabletop env speed vs raw MuJoCo on the same model, and AsyncVectorEnv scaling.

    python benchmarks/bench_env.py [--robot panda] [--resolution 96] [--steps 200]

Baseline, measured in the same run: ``mujoco.mj_step`` for one control period (the env's
substeps) + ``Renderer.update_scene/render`` of the same cameras, on the env's own model.
The ratio (env rate / raw rate) is the wrapper's cost: action checks, servo setpoint
interpolation, observation dicts, the success check and the symbolic state in ``info``.
Both loops drive the arm with the same sweeping joint targets.  Also: 1 env vs AsyncVectorEnv with 2
workers (``spawn`` context), same per-env work.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402


def _env(task, robot, cams, res):
    from robolearn.envs.tabletop_env import TabletopEnv

    return TabletopEnv(task, robot=robot, cameras={"names": list(cams), "resolution": res})


class Sweep:
    """Joint targets sweeping +-0.15 rad around home at 0.5 Hz: the arm really moves, so
    the env pays for its setpoint interpolation like it does under a policy."""

    def __init__(self, env):
        s = env.unwrapped.sim
        self.home, self.k, self.dt = s.home_q.copy(), 0, s.control_dt
        self.phase = np.linspace(0, np.pi, len(self.home))

    def __call__(self) -> np.ndarray:
        self.k += 1
        q = self.home + 0.15 * np.sin(2 * np.pi * 0.5 * self.k * self.dt + self.phase)
        return np.r_[q, 0.0].astype(np.float32)


class RawLoop:
    """mj_step x substeps (+ render of each camera) on the env's own model."""

    def __init__(self, env, cams, res):
        import mujoco

        sim = env.unwrapped.sim
        self.mujoco, self.m, self.nsub = mujoco, sim.model, sim.n_substeps
        self.d = mujoco.MjData(sim.model)
        self.d.qpos[:] = sim.data.qpos
        self.d.ctrl[:] = sim.data.ctrl
        self.r = mujoco.Renderer(self.m, res, res) if cams else None
        if self.r is not None:  # the env's learning-camera settings
            for f in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                      mujoco.mjtRndFlag.mjRND_SKYBOX):
                self.r.scene.flags[f] = 0
        self.cams = [sim.robot.wrist_camera if c == "wrist" else c for c in cams]
        self.arm_act, self.sweep = sim.arm_act, Sweep(env)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.d.ctrl[self.arm_act] = self.sweep()[:-1]
            self.mujoco.mj_step(self.m, self.d, nstep=self.nsub)
            for c in self.cams:
                self.r.update_scene(self.d, c)
                self.r.render()

    def close(self):
        if self.r is not None:
            self.r.close()


def _timed(fn, steps) -> float:
    t0 = time.perf_counter()
    fn(steps)
    return time.perf_counter() - t0


def interleaved(fn_a, fn_b, steps: int, rounds: int = 10) -> tuple[float, float]:
    """Steps/s of two loops measured in alternating blocks, so load from other processes
    on the shared cores hits both alike."""
    fn_a(2)
    fn_b(2)  # warm-up (renderer contexts, caches)
    ta = tb = 0.0
    block = max(1, steps // rounds)
    for _ in range(rounds):
        ta += _timed(fn_a, block)
        tb += _timed(fn_b, block)
    return rounds * block / ta, rounds * block / tb


def env_stepper(env):
    sweep = Sweep(env)

    def run(steps):
        for _ in range(steps):
            env.step(sweep())
    return run


def vector_speedup(task, robot, cams, res, steps, context="spawn") -> tuple[float, float, float]:
    from robolearn.envs import make_env, make_vec_env

    kw = dict(robot=robot, cameras={"names": list(cams), "resolution": res})
    single = make_env(task, **kw)
    single.reset(seed=0)
    venv = make_vec_env(task, 2, context=context, seed=0, **kw)
    sweep = Sweep(single)

    def vec(n):
        for _ in range(n):
            a = sweep()
            venv.step(np.stack([a, a]))
    r1, rv = interleaved(env_stepper(single), vec, steps)
    single.close()
    venv.close()
    return r1, 2 * rv, 2 * rv / r1


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="PickPlace")
    ap.add_argument("--robot", default="panda")
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--cameras", nargs="*", default=["front", "wrist"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--no-vector", action="store_true")
    args = ap.parse_args(argv)
    cams, res, n = args.cameras, args.resolution, args.steps
    print(f"# {args.robot} {args.task}, {len(cams)} cameras at {res} px, {n} control steps "
          f"(10 Hz, {os.cpu_count()} CPUs, MUJOCO_GL={os.environ['MUJOCO_GL']})")
    rows = []
    for label, c in (("no rendering", []), (f"rendering {'+'.join(cams)}", cams)):
        env = _env(args.task, args.robot, c, res)
        env.reset(seed=0)
        raw_loop = RawLoop(env, c, res)
        raw, wrapped = interleaved(raw_loop.run, env_stepper(env), n)
        rows.append((label, raw, wrapped))
        raw_loop.close()
        env.close()
    print(f"{'':28s} {'raw mj_step+render':>20s} {'TabletopEnv.step':>18s} {'ratio':>7s}")
    for label, raw, wrapped in rows:
        print(f"{label:28s} {raw:17.1f}/s {wrapped:15.1f}/s {wrapped / raw:7.2f}x")
    if not args.no_vector:
        r1, r2, sp = vector_speedup(args.task, args.robot, cams, res, max(50, n // 2))
        print(f"AsyncVectorEnv(spawn): 1 env {r1:.1f} steps/s, 2 workers {r2:.1f} steps/s "
              f"-> speed-up {sp:.2f}x")


if __name__ == "__main__":
    main()
