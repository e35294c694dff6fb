"""Primitive skills: specs (parameters, pre/post-conditions, language) and scripted experts.

A skill here is what the skill library (issue: skills/planner) is seeded from:

* a :class:`SkillSpec` - name, typed parameters, a language template, preconditions and
  effects as predicate strings over :meth:`TabletopSim.symbolic_state` facts, and a
  success check that rejects near misses;
* a scripted expert - a generator of end-effector waypoints (position, yaw, gripper) that
  :class:`ExpertContext` turns into arm joint targets with damped-least-squares IK on
  MuJoCo's Jacobians (:mod:`robolearn.envs.control`).  The servos then track those targets:
  objects only ever move because the fingers push or squeeze them.

Run one with :func:`run_skill` (``run_skill(env, "pick", {"obj": "red_block"}) -> bool``) or
stream its actions with :func:`expert_actions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from robolearn.envs import scene as S
from robolearn.envs.geometry import box_yaw, down_mat, wrap, yaw_of

HOVER = 0.12  # hover height above a grasp/release point (m)
SAFE_Z = 0.17  # transit height that clears the cabinet (0.12 m) and an open drawer's front
FAST, SLOW = 0.30, 0.12  # EE speeds (m/s) for free-space moves and for contact moves
GRASP_DZ = 0.008  # pinch site above the cube centre: pads cover the cube, tips clear the table
HANDLE_DZ = 0.004


# ============================================================================ specs
@dataclass(frozen=True)
class SkillSpec:
    """A parameterised primitive with symbolic pre/post-conditions and a language template."""

    name: str
    params: dict  # parameter -> type: "object" (a cube), "place_target" (bowl|pad), ...
    description: str  # language template, e.g. "pick up the {obj}"
    preconditions: tuple[str, ...]
    add_effects: tuple[str, ...]
    del_effects: tuple[str, ...]
    check: Callable = field(repr=False, compare=False, default=None)
    expert: Callable = field(repr=False, compare=False, default=None)

    def instruction(self, args: dict) -> str:
        return self.description.format(**{k: _words(v) for k, v in args.items()})

    def ground(self, args: dict) -> dict:
        """Pre/post-conditions with arguments filled in (``holding(red_block)``)."""
        f = lambda items: [p.format(**args) for p in items]  # noqa: E731
        return {"pre": f(self.preconditions), "add": f(self.add_effects),
                "del": f(self.del_effects)}

    def validate(self, args: dict) -> None:
        if set(args) != set(self.params):
            raise ValueError(f"skill {self.name!r} takes {sorted(self.params)}, got {sorted(args)}")
        for k, v in args.items():
            allowed = PARAM_VALUES[self.params[k]]
            if v not in allowed:
                raise ValueError(f"skill {self.name!r}: {k}={v!r} is not one of {allowed}")


PARAM_VALUES = {"object": tuple(S.CUBES), "place_target": ("bowl", "pad"),
                "push_target": ("pad",), "reach_target": tuple(S.CUBES) + ("bowl", "pad")}


def _words(name: str) -> str:
    return {"pad": "target pad", "bowl": "bowl"}.get(name, name.replace("_", " "))


# ============================================================================ expert runtime
class ExpertContext:
    """The expert's commanded EE pose and gripper, turned into joint targets by IK.

    Commands move at bounded speed (``FAST``/``SLOW``) towards each waypoint, so the joint
    targets handed to the servos form a smooth path rather than a jump.
    """

    def __init__(self, sim, offset: np.ndarray | None = None):
        from robolearn.envs.control import IKSolver  # mujoco: imported only when run

        self.sim = sim
        self.ik = IKSolver(sim)
        self.pos = sim.ee_pos()
        self.yaw = yaw_of(sim.ee_mat())
        self.grip = sim.grip_cmd
        self.q = sim.arm_target.copy()
        #: sabotage: a horizontal error added to every target (failed-episode generation)
        self.offset = np.zeros(3) if offset is None else np.asarray(offset, float)
        #: recovery demos: the cube slips this far (m, signed: which side) out of the first
        #: grasp as the fingers close, so the episode shows a failed grasp and the expert's
        #: re-grasp (0 = never)
        self.slip = 0.0

    def joint_target(self) -> np.ndarray:
        self.q = self.ik.solve(self.pos, down_mat(self.yaw), self.q)
        return self.q

    def ee_target(self) -> tuple[np.ndarray, np.ndarray, float]:
        return self.pos.copy(), down_mat(self.yaw), self.grip


def move_to(ctx: ExpertContext, target, yaw: float | None = None, speed: float = FAST,
            tol: float = 0.01, max_steps: int = 80) -> Iterator[None]:
    """Drive the commanded EE pose to ``target`` (+ yaw) and wait until the arm gets there."""
    target = np.asarray(target, float) + ctx.offset
    dt = ctx.sim.control_dt
    yaw = ctx.yaw if yaw is None else yaw
    for _ in range(max_steps):
        delta = target - ctx.pos
        dist = np.linalg.norm(delta)
        step = speed * dt
        ctx.pos = target.copy() if dist <= step else ctx.pos + delta / dist * step
        dyaw = wrap(yaw - ctx.yaw)
        ctx.yaw += float(np.clip(dyaw, -1.2 * dt, 1.2 * dt))
        yield
        if dist <= step and abs(wrap(yaw - ctx.yaw)) < 1e-3 and \
                np.linalg.norm(ctx.sim.ee_pos() - target) < tol:
            return


def set_gripper(ctx: ExpertContext, grip: float, steps: int = 5) -> Iterator[None]:
    ctx.grip = float(grip)
    for _ in range(steps):
        yield


def grasp_yaw(ctx: ExpertContext, cube_yaw: float) -> float:
    """The cube's four grasp yaws are 90 deg apart: take the one nearest the robot's neutral
    wrist yaw (keeps the last joint mid-range)."""
    home = ctx.sim.robot.home_yaw
    k = np.round((home - cube_yaw) / (np.pi / 2))
    return wrap(cube_yaw + k * np.pi / 2)


# ---------------------------------------------------------------------------- experts
def expert_reach(ctx: ExpertContext, target: str) -> Iterator[None]:
    goal = reach_goal(ctx.sim, target)
    yield from move_to(ctx, goal, yaw=ctx.sim.robot.home_yaw, tol=0.005)
    yield from set_gripper(ctx, ctx.grip, steps=2)  # let the arm come to rest on the goal


#: grasps the pick expert tries before it gives up (it re-grasps when the lift shows none)
PICK_ATTEMPTS = 3


def expert_pick(ctx: ExpertContext, obj: str) -> Iterator[None]:
    sim = ctx.sim
    for _ in range(PICK_ATTEMPTS):
        p = sim.object_pos(obj)
        yaw = grasp_yaw(ctx, box_yaw(sim.object_quat(obj)))
        yield from set_gripper(ctx, 0.0, steps=1 if sim.gripper_closure() < 0.1 else 5)
        yield from move_to(ctx, p + [0, 0, HOVER], yaw=yaw)
        p = sim.object_pos(obj)  # re-read: closed loop on where the cube is now
        yield from move_to(ctx, [p[0], p[1], p[2] + HOVER / 2], yaw=yaw, speed=FAST)
        yield from move_to(ctx, p + [0, 0, GRASP_DZ], yaw=yaw, speed=SLOW, tol=0.006)
        if ctx.slip:  # recovery demo: out of the fingers, across their closing axis
            u = sim.closing_axis()
            sim.displace_object(obj, ctx.slip * np.array([-u[1], u[0]]))
            ctx.slip = 0.0
        yield from set_gripper(ctx, 1.0, steps=6)
        yield from move_to(ctx, p + [0, 0, 0.15], speed=SLOW)
        if check_pick(sim, obj) or ctx.offset.any():  # held (or sabotaged: no retries)
            return


def _place_point(sim, target: str) -> tuple[np.ndarray, float]:
    """Release point of the held cube's centre and the release height above the surface."""
    c = sim.object_pos(target)
    if target == "bowl":
        return np.r_[c[:2], S.BOWL_WALL_HEIGHT + S.CUBE_HALF + 0.02], 0.0
    return np.r_[c[:2], S.CUBE_HALF + 0.006], 0.0


def expert_place(ctx: ExpertContext, obj: str, target: str) -> Iterator[None]:
    sim = ctx.sim
    goal, _ = _place_point(sim, target)
    # the cube may sit off-centre between the fingers: correct by where it actually is
    grip_off = sim.object_pos(obj) - sim.ee_pos()
    grip_off[2] = 0.0
    yield from move_to(ctx, goal - grip_off + [0, 0, HOVER])
    grip_off = sim.object_pos(obj) - sim.ee_pos()
    grip_off[2] = 0.0
    yield from move_to(ctx, goal - grip_off + [0, 0, GRASP_DZ], speed=SLOW, tol=0.006)
    yield from set_gripper(ctx, 0.0, steps=5)
    yield from move_to(ctx, ctx.pos - ctx.offset + [0, 0, HOVER], speed=SLOW)


def expert_push(ctx: ExpertContext, obj: str, target: str, max_steps: int = 160) -> Iterator[None]:
    """Closed-loop pushing: stay behind the cube on the line to the goal and step forward;
    re-approach from above when the cube slides off the line."""
    sim = ctx.sim
    yield from set_gripper(ctx, 1.0, steps=1 if sim.gripper_closure() > 0.9 else 5)
    back = S.CUBE_HALF + 0.035  # approach point behind the cube
    z = 0.022  # closed fingertips just above the table
    approached, detour = False, 0  # detour: steps left of an angled stroke around a fixture
    for _ in range(max_steps):
        c, g = sim.object_pos(obj), sim.object_pos(target) + ctx.offset
        d = g[:2] - c[:2]
        dist = np.linalg.norm(d)
        if dist < 0.008:
            break
        u = np.r_[d / dist, 0.0]
        if detour > 0:
            u, detour = stroke, detour - 1
            approached = detour > 0
        yaw = grasp_yaw(ctx, np.arctan2(u[1], u[0]))  # broad side of the fingers faces u
        ee = sim.ee_pos()
        rel = c - ee
        along = rel[:2] @ u[:2]
        lateral = abs(rel[0] * u[1] - rel[1] * u[0])
        if not approached or lateral > 0.015 or along < 0.0 or along > back + 0.03:
            start, stroke = _push_start(sim, c, u, back)
            detour = 0 if np.allclose(stroke, u) else 8
            yaw = grasp_yaw(ctx, np.arctan2(stroke[1], stroke[0]))
            yield from move_to(ctx, [ee[0], ee[1], max(SAFE_Z, ee[2])], speed=FAST, tol=0.02)
            yield from move_to(ctx, [start[0], start[1], SAFE_Z], yaw=yaw, tol=0.01)
            yield from move_to(ctx, [start[0], start[1], z], yaw=yaw, speed=SLOW, tol=0.006)
            approached = True
            continue
        # contact point is CUBE_HALF + finger half-width behind the centre; aim a bit past it,
        # never past the goal, so the cube decelerates as it arrives
        ahead = min(0.015, dist)
        cmd = c - u * (S.CUBE_HALF + 0.012) + u * ahead
        ctx.pos = np.array([cmd[0], cmd[1], z])
        ctx.yaw = yaw
        yield
    yield from move_to(ctx, sim.ee_pos() - u * 0.03 + [0, 0, 0.0], speed=SLOW, tol=0.02)
    yield from move_to(ctx, ctx.pos - ctx.offset + [0, 0, 0.10], speed=FAST, tol=0.02)


def _clear_of_fixtures(sim, xy, margin: float = 0.035) -> bool:
    """Is a fingertip at table height at ``xy`` clear of the bowl wall and the cabinet?"""
    bowl = sim.object_pos("bowl")[:2]
    if np.linalg.norm(xy - bowl) < S.BOWL_RADIUS + 0.012 + margin:
        return False
    cab = sim.data.xpos[sim.cabinet_body][:2]
    hx, hy, _ = S.CABINET_HALF
    front = hx + 0.012 + max(sim.drawer_opening(), 0.0)  # the drawer front moves out
    return not (cab[0] - front - margin < xy[0] < cab[0] + hx + margin
                and abs(xy[1] - cab[1]) < hy + margin)


def _push_start(sim, c, u, back):
    """Where to put the closed fingers behind the cube: straight behind it on the line to
    the goal if that spot is free, else a shorter or slightly angled approach that clears
    the bowl wall and the cabinet (a blocked descent would stall on the fixture)."""
    for b in (back, S.CUBE_HALF + 0.025):
        for ang in (0.0, 0.3, -0.3, 0.6, -0.6):
            ca, sa = np.cos(ang), np.sin(ang)
            v = np.array([ca * u[0] - sa * u[1], sa * u[0] + ca * u[1], 0.0])
            start = c - v * b
            if _clear_of_fixtures(sim, start[:2]):
                return start, v
    return c - u * back, u


def _drawer_move(ctx: ExpertContext, goal_opening: float) -> Iterator[None]:
    sim = ctx.sim
    h = sim.object_pos("drawer_handle")
    yaw = sim.robot.home_yaw  # fingers close along world y, across the tab
    yield from set_gripper(ctx, 0.0, steps=1 if sim.gripper_closure() < 0.1 else 5)
    yield from move_to(ctx, h + [0, 0, HOVER], yaw=yaw)
    h = sim.object_pos("drawer_handle")
    yield from move_to(ctx, h + [0, 0, HANDLE_DZ], yaw=yaw, speed=SLOW, tol=0.006)
    yield from set_gripper(ctx, 1.0, steps=6)
    shift = goal_opening - sim.drawer_opening()  # slide axis is world -x
    yield from move_to(ctx, ctx.pos - ctx.offset + [-shift, 0, 0], speed=0.10, tol=0.01,
                       max_steps=60)
    yield from set_gripper(ctx, 0.0, steps=5)
    yield from move_to(ctx, ctx.pos - ctx.offset + [0, 0, HOVER], speed=SLOW, tol=0.02)


def expert_open_drawer(ctx: ExpertContext) -> Iterator[None]:
    yield from _drawer_move(ctx, S.DRAWER_TRAVEL - 0.005)


def expert_close_drawer(ctx: ExpertContext) -> Iterator[None]:
    yield from _drawer_move(ctx, -0.01)  # aim slightly past closed: the stop ends it


# ---------------------------------------------------------------------------- success checks
def reach_goal(sim, target: str) -> np.ndarray:
    return sim.object_pos(target) + np.array([0.0, 0.0, 0.10])


def check_reach(sim, target: str) -> bool:
    return bool(np.linalg.norm(sim.ee_pos() - reach_goal(sim, target)) < 0.015)


def check_pick(sim, obj: str) -> bool:
    """Held between both pads and lifted clear of the table (a touch or a nudge is not a pick)."""
    return sim.is_grasped(obj) and sim.object_pos(obj)[2] > S.CUBE_HALF + 0.05


def _released(sim, obj: str) -> bool:
    return not sim.touches_gripper(obj) and sim.object_speed(obj) < 0.05


def check_place(sim, obj: str, target: str) -> bool:
    inside = sim.in_bowl(obj) if target == "bowl" else sim.on_pad(obj)
    return inside and _released(sim, obj)


def check_push(sim, obj: str, target: str) -> bool:
    """On the pad (1 cm inset from its edge), still on the table (pushed, not carried)."""
    return sim.on_pad(obj) and _released(sim, obj)


def check_open_drawer(sim) -> bool:
    return sim.drawer_state() == "open"


def check_close_drawer(sim) -> bool:
    return sim.drawer_state() == "closed"


SKILLS: dict[str, SkillSpec] = {s.name: s for s in (
    SkillSpec("reach", {"target": "reach_target"}, "move the gripper above the {target}",
              (), (), (), check_reach, expert_reach),
    SkillSpec("pick", {"obj": "object"}, "pick up the {obj}",
              ("gripper_empty",), ("holding({obj})", "at({obj},gripper)"),
              ("gripper_empty", "at({obj},*)", "in({obj},*)", "on({obj},*)"),
              check_pick, expert_pick),
    SkillSpec("place", {"obj": "object", "target": "place_target"},
              "put the {obj} on the {target}", ("holding({obj})",),
              ("gripper_empty", "at({obj},{target})"), ("holding({obj})", "at({obj},gripper)"),
              check_place, expert_place),
    SkillSpec("push", {"obj": "object", "target": "push_target"},
              "push the {obj} onto the {target}", ("gripper_empty", "at({obj},table)"),
              ("on({obj},{target})", "at({obj},{target})"), ("at({obj},table)",),
              check_push, expert_push),
    SkillSpec("open_drawer", {}, "open the drawer", ("gripper_empty", "drawer_closed"),
              ("drawer_open",), ("drawer_closed",), check_open_drawer, expert_open_drawer),
    SkillSpec("close_drawer", {}, "close the drawer", ("gripper_empty", "drawer_open"),
              ("drawer_closed",), ("drawer_open",), check_close_drawer, expert_close_drawer),
)}
# Predicates are the strings in TabletopSim.symbolic_state()["facts"]: at(x,loc) with loc in
# table|bowl|pad|drawer|gripper, in(x,bowl), on(x,pad), holding(x), gripper_empty,
# drawer_open|drawer_closed|drawer_partly_open.  "*" in a delete effect matches any value.


def get_skill(name: str) -> SkillSpec:
    if name not in SKILLS:
        raise KeyError(f"unknown skill {name!r}; known skills: {sorted(SKILLS)}")
    return SKILLS[name]


def skill_catalog() -> list[dict]:
    """Every primitive as a JSON-able record: the skill library is seeded from this."""
    return [{"name": s.name, "params": dict(s.params),
             "param_values": {k: list(PARAM_VALUES[t]) for k, t in s.params.items()},
             "description": s.description, "preconditions": list(s.preconditions),
             "add_effects": list(s.add_effects), "del_effects": list(s.del_effects),
             "source": "scripted", "executor": f"robolearn.envs.skills:run_skill('{s.name}')"}
            for s in SKILLS.values()]


def check_skill(sim, name: str, args: dict) -> bool:
    return bool(get_skill(name).check(sim, **args))


# ---------------------------------------------------------------------------- running
def expert_waypoints(sim, name: str, args: dict, ctx: ExpertContext | None = None):
    """Generator driving ``ctx`` through skill ``name``; yields once per control step."""
    spec = get_skill(name)
    spec.validate(args)
    ctx = ctx or ExpertContext(sim)
    return spec.expert(ctx, **args), ctx


def expert_actions(env, name: str, args: dict, ctx: ExpertContext | None = None):
    """Yield the env-space action of every control step of skill ``name`` (the caller steps)."""
    base = env.unwrapped
    gen, ctx = expert_waypoints(base.sim, name, args, ctx)
    for _ in gen:
        yield base.expert_action(ctx)


def run_skill(env, name: str, args: dict | None = None, max_steps: int = 400,
              on_step: Callable | None = None) -> bool:
    """Run scripted primitive ``name`` with ``args`` in a (possibly wrapped) tabletop env.

    Steps the env until the expert finishes (or ``max_steps``), calls
    ``on_step(obs, action, reward, terminated, truncated, info)`` after each step, and returns
    the skill's success check on the final state.  Stops early if the env's episode ends.
    """
    args = dict(args or {})
    for n, action in enumerate(expert_actions(env, name, args)):
        out = env.step(action)
        if on_step is not None:
            on_step(*out[:1], action, *out[1:])
        if out[2] or out[3] or n + 1 >= max_steps:
            break
    return check_skill(env.unwrapped.sim, name, args)
