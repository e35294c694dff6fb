"""Running library skills in the sim: one call, a skill's evaluation over seeds, a plan with
grounded re-planning.

Needs ``robolearn.envs`` (MuJoCo), imported inside the functions.  Composite skills expand
to their primitives; scripted primitives run through the sim's skill runner
(``robolearn.envs.skills.run_skill``); policy-backed skills run their checkpoint
conditioned on their instruction (:func:`run_policy_skill`), with the same observation
layout and chunked execution as ``robolearn-eval``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from robolearn.skills.compose import expand
from robolearn.skills.types import Skill, SkillCall, SkillError, words

#: loaded policy checkpoints (resolved folder -> policy): a plan reuses them across steps
_POLICIES: dict[str, Any] = {}


def make_env(task: str, robot: str = "", cameras: list[str] | None = None,
             render: bool = False):
    """A tabletop env for ``task`` without a time limit (plans may re-plan past it)."""
    import gymnasium as gym

    from robolearn.envs import env_id

    kw = {"cameras": {"names": list(cameras or [])}}
    if robot:
        kw["robot"] = robot
    return gym.make(env_id(task), max_episode_steps=100_000,
                    render_mode="rgb_array" if render else None, **kw)


def facts_of(env) -> list[str]:
    return list(env.unwrapped.sim.symbolic_state()["facts"])


def run_call(env, call: SkillCall, skills: dict[str, Skill], on_step=None) -> bool:
    """Run one (possibly composite) call; True if every primitive's success check holds."""
    from robolearn.envs.skills import run_skill

    for prim in expand(call, skills):
        skill = skills[prim.skill]
        if skill.execution.kind == "policy":
            if not run_policy_skill(env, skill, prim.kwargs, on_step=on_step):
                return False
            continue
        name = skill.execution.primitive or skill.name
        if not run_skill(env, name, prim.kwargs, on_step=on_step):
            return False
    return True


def load_skill_policy(checkpoint: str):
    """The policy of a checkpoint (run, step or policy folder), loaded once per process."""
    from robolearn.policies.base import load_policy, resolve_policy_dir

    try:
        key = str(resolve_policy_dir(checkpoint))
    except FileNotFoundError as e:
        raise SkillError(f"policy skill checkpoint: {e}") from None
    if key not in _POLICIES:
        _POLICIES[key] = load_policy(key)
    return _POLICIES[key]


def policy_instruction(skill: Skill, args: dict) -> str:
    """What conditions the policy: the skill's own instruction template, else the sim
    primitive's step instruction (exactly how demos of that primitive are annotated), else
    the skill's description."""
    from robolearn.envs.tasks import step_instruction

    ex = skill.execution
    if ex.instruction:
        return ex.instruction.format(**{k: words(v) for k, v in args.items()})
    if ex.primitive:
        return step_instruction(ex.primitive, args)
    return skill.instruction(args)


def run_policy_skill(env, skill: Skill, args: dict, max_steps: int = 200,
                     on_step=None) -> bool:
    """Run a policy-backed skill until its success check holds (or ``max_steps``).

    The check is the sim primitive's (``execution.primitive``) when the skill names one,
    else the skill's add/delete effects against the scene's symbolic facts.  Cameras the
    policy reads are rendered from the env's sim at its configured resolution, whatever
    cameras the env itself was made with.
    """
    from robolearn import keys as K
    from robolearn.envs.skills import check_skill
    from robolearn.eval.rollout import ChunkExecutor, env_obs_to_policy

    policy = load_skill_policy(skill.execution.checkpoint)
    base = env.unwrapped
    cams = [K.camera_name(k) for k in policy.config.image_keys]
    res = base.cfg.cameras.resolution
    instruction = policy_instruction(skill, args)

    def done() -> bool:
        if skill.execution.primitive:
            return check_skill(base.sim, skill.execution.primitive, args)
        return skill.effects_hold(args, facts_of(env))

    ex = ChunkExecutor(policy, 1)
    for _ in range(max_steps):
        obs = base.current_observation(cams, res)
        ex.observe(0, env_obs_to_policy(obs, cams))
        action = ex.act([0], [instruction])[0].astype("float32")
        out = env.step(action)
        if on_step is not None:
            on_step(*out[:1], action, *out[1:])
        if done():
            return True
        if out[2] or out[3]:
            break
    return done()


def evaluate_skill(store, name: str, task: str, seeds: int, fixed_args: dict | None = None,
                   robot: str = "", seed: int = 0, record: bool = True) -> dict:
    """Run skill ``name`` in ``task`` for ``seeds`` episodes and (``record``) add the
    outcomes to its statistics under env ``task``.  Unmet preconditions at reset are set up
    first by the shortest chain of library skills that achieves them (not counted)."""
    from robolearn.planner.domain import Domain

    skills = {s.name: s for s in store.skills()}
    skill = store.get(name)
    env = make_env(task, robot)
    ok = 0
    runs = []
    try:
        for i in range(seeds):
            _, info = env.reset(seed=seed + i)
            args = {p: (fixed_args or {}).get(p, info["task_args"].get(p))
                    for p in skill.param_names}
            if any(v is None for v in args.values()):
                raise SkillError(f"task {task!r} does not bind {skill.param_names}; pass "
                                 f"--args k=v")
            call = SkillCall.make(name, args)
            dom = Domain.build(skills.values(), facts_of(env))
            setup = dom.achieve(skill.ground(args)["pre"], dom.facts) \
                if dom.check(call, dom.facts) else []
            if setup is None:
                raise SkillError(f"cannot set up {call} in {task}: no chain of library skills "
                                 f"makes {skill.ground(args)['pre']} true")
            t0 = time.perf_counter()
            good = all(run_call(env, c, skills) for c in setup) and run_call(env, call, skills)
            ok += good
            runs.append({"seed": seed + i, "args": args, "setup": [str(c) for c in setup],
                         "success": bool(good), "seconds": round(time.perf_counter() - t0, 2)})
    finally:
        env.close()
    if record:
        store.record(name, task, successes=ok, attempts=seeds)
    return {"skill": name, "env": task, "attempts": seeds, "successes": ok, "runs": runs}


@dataclass
class StepOutcome:
    call: str
    success: bool
    seconds: float


@dataclass
class Execution:
    """What happened when a plan ran: steps, re-plans, final task success."""

    instruction: str
    plans: list[dict] = field(default_factory=list)
    steps: list[StepOutcome] = field(default_factory=list)
    replans: int = 0
    success: bool = False  # the env task's own success check (its sampled arguments)
    goal_reached: bool = False  # what the executed plan should have changed holds in the sim
    status: str = ""  # ok | refused | missing_skill | invalid | failed

    def to_dict(self) -> dict:
        return {"instruction": self.instruction, "status": self.status,
                "success": self.success, "goal_reached": self.goal_reached,
                "replans": self.replans, "plans": self.plans,
                "steps": [s.__dict__ for s in self.steps]}


def execute_plan(planner, env, instruction: str, max_replans: int = 2,
                 on_step=None) -> Execution:
    """Plan ``instruction`` from the env's current state, run it step by step, and re-plan
    from the observed state after a failed step (up to ``max_replans`` times)."""
    from robolearn.planner.domain import Domain

    out = Execution(instruction)
    skills = {s.name: s for s in planner.skills()}
    start = Domain.build(skills.values(), facts_of(env))  # state the current plan starts in
    done: list[SkillCall] = []
    plan = planner.plan(instruction, facts_of(env))
    while True:
        out.plans.append(plan.to_dict())
        if not plan.ok:
            out.status = plan.status
            break
        failed = None
        for call in plan.steps:
            t0 = time.perf_counter()
            good = run_call(env, call, skills, on_step=on_step)
            out.steps.append(StepOutcome(str(call), good, round(time.perf_counter() - t0, 2)))
            if not good:
                failed = call
                break
            done.append(call)
        if failed is None:
            out.status = "ok"
            break
        if out.replans >= max_replans:
            out.status = "failed"
            break
        out.replans += 1
        start = Domain.build(skills.values(), facts_of(env))
        plan = planner.replan(instruction, facts_of(env), done=done, failed=failed)
    if out.status == "ok":
        expected, _ = start.simulate(plan.steps)
        now = Domain.build(skills.values(), facts_of(env)).facts
        out.goal_reached = (expected - start.facts) <= now
    task = env.unwrapped.task
    out.success = bool(task.success(env.unwrapped.sim, env.unwrapped.task_args))
    return out
