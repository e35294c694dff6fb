"""PushT (gym-pusht, the anchor benchmark of Diffusion Policy) as a robolearn env backend,
with a scripted pushing expert so demos can be collected here.

The task is named ``pusht``.  :class:`PushTEnv` wraps ``gym_pusht``'s own env (its physics,
its goal, its coverage metric):

* **Observations** follow robolearn's convention: ``obs["state"]`` is 18-D: the agent's
  position then the 8 outline keypoints of the T (gym-pusht's
  ``environment_state_agent_pos``, as LeRobot's and Diffusion Policy's low-dim PushT use:
  no angle wrap-around), in pixels of the 512 x 512 workspace; ``obs["images"]["top"]``
  is gym-pusht's own top-down render (96 px by default).
* **Actions** are gym-pusht's: the 2-D target position of the agent (pixels, [0, 512]),
  tracked by its PD controller at 10 Hz.
* **Metric** is gym-pusht's: ``info["score"]`` = its reward, goal-area coverage / 0.95
  clipped to 1; ``success`` = coverage > 0.95 (the episode ends there).  The evaluator
  reports success and the mean over episodes of the best score (Diffusion Policy's
  "target area coverage").  Horizon 300 steps (gym-pusht's and LeRobot's).
* **Seeds**: episode seed ``s`` is gym-pusht's own ``reset(seed=s)`` (its RNG draws the
  agent and T start poses), so a seed means the same start as in gym-pusht.

The expert (:class:`PushTExpert`) has no learned parts: at each decision it simulates
candidate pushes (contact point on the T's outline x push direction x length) in a
private copy of gym-pusht's physics, picks the one that brings the T's keypoints closest
to the goal's (plus a small travel cost), walks the agent around the T to the contact and
pushes.  Its demos are multi-modal the way human PushT demos are (many contacts serve).
"""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

TASK = "pusht"
INSTRUCTION = "push the T block onto the green T"
HORIZON = 300
FPS = 10.0
STATE_DIM, ACTION_DIM = 18, 2
CAMERA = "top"
#: size of ``render()`` (videos): gym-pusht's 680 px view scaled down
RENDER_PX = 256
AGENT_R = 15.0
#: the T's outline in its body frame (gym-pusht's add_tee, scale 30, length 4), CCW
OUTLINE = np.array([(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120),
                    (-15, 30), (-60, 30)], float)
#: gym-pusht's 8 keypoints (the vertices of its two boxes, in pymunk's order) in the body frame
KEYPOINTS = np.array([(-60, 0), (60, 0), (60, 30), (-60, 30),
                      (-15, 30), (15, 30), (15, 120), (-15, 120)], float)


def require_pusht():
    """Import gym_pusht or fail with the install command."""
    try:
        import gym_pusht  # noqa: F401
        from gym_pusht.envs.pusht import PushTEnv as _Raw
    except ImportError as e:
        raise ImportError(
            f"PushT needs the `gym-pusht` package ({e}); install it with "
            f"`pip install -e '.[benchmarks]'` (make setup does)") from e
    return _Raw


def _rot(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s], [s, c]])


def world_points(pose, local: np.ndarray = KEYPOINTS) -> np.ndarray:
    """Body-frame points of the T at ``pose`` = (x, y, angle) in the workspace."""
    return local @ _rot(float(pose[2])).T + np.asarray(pose[:2], float)


class PushTEnv(gym.Env):
    """gym-pusht's PushT in robolearn's observation/info convention (see the module doc).

    Keyword arguments follow robolearn's ``EnvConfig`` (the evaluator's protocol passes
    straight through): ``cameras={"names": ["top"], "resolution": R}`` and
    ``max_episode_steps``; the tabletop-only settings are accepted and ignored, except
    that another robot or action space is an error.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, task: str = TASK, cameras: dict | None = None,
                 max_episode_steps: int = 0, render_mode: str | None = None,
                 robot: str = "", action_space: str = "", **_ignored: Any):
        raw_cls = require_pusht()
        if task != TASK:
            raise KeyError(f"unknown PushT task {task!r}; the backend has {TASK!r}")
        if robot not in ("", "pusht", "panda"):  # panda: the tabletop default
            raise ValueError(f"PushT drives a point agent; robot={robot!r} is not available")
        if action_space not in ("", "ee_delta", "joint_pos", "xy_target"):
            raise ValueError(f"PushT actions are 2-D agent targets; action_space="
                             f"{action_space!r} is not available")
        cams = dict(cameras or {})
        self.cameras = list(cams.get("names", []))
        bad = [c for c in self.cameras if c != CAMERA]
        if bad:
            raise ValueError(f"PushT has one camera, {CAMERA!r}; asked for {bad}")
        self.resolution = int(cams.get("resolution", 96))
        self.render_mode = render_mode
        self.task_name, self.name, self.instruction = TASK, TASK, INSTRUCTION
        self.max_steps = int(max_episode_steps or HORIZON)
        self.raw = raw_cls(obs_type="state", render_mode="rgb_array",
                           observation_width=self.resolution,
                           observation_height=self.resolution,
                           visualization_width=RENDER_PX, visualization_height=RENDER_PX)
        self.action_space = gym.spaces.Box(0.0, 512.0, (ACTION_DIM,), np.float32)
        spaces = {"state": gym.spaces.Box(0.0, 512.0, (STATE_DIM,), np.float32)}
        if self.cameras:
            r = self.resolution
            spaces["images"] = gym.spaces.Dict({CAMERA: gym.spaces.Box(0, 255, (r, r, 3),
                                                                       np.uint8)})
        self.observation_space = gym.spaces.Dict(spaces)
        self._t = 0
        self._last: tuple | None = None

    # -- state
    @property
    def block_pose(self) -> np.ndarray:
        b = self.raw.block
        return np.array([b.position[0], b.position[1], b.angle])

    @property
    def agent_pos(self) -> np.ndarray:
        return np.array(self.raw.agent.position, float)

    def _obs(self) -> dict:
        kp = self.raw.get_keypoints(self.raw._block_shapes).reshape(-1)
        obs = {"state": np.r_[self.agent_pos, kp].astype(np.float32)}
        if self.cameras:
            obs["images"] = {CAMERA: np.ascontiguousarray(self.raw._render())}
        return obs

    def _info(self, coverage: float, success: bool) -> dict:
        return {"success": bool(success), "instruction": self.instruction,
                "coverage": float(coverage),
                "score": float(np.clip(coverage / self.raw.success_threshold, 0.0, 1.0)),
                "plan_step": int(success), "plan_length": 1,
                "plan_instruction": self.instruction, "plan_skills": self.name}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.raw.reset(seed=seed, options=options)
        self._t, self._last = 0, None
        return self._obs(), self._info(self.raw._get_coverage(), False)

    def step(self, action):
        if self._last is not None:  # over (a vector env steps idle workers): stay put
            obs, _, term, trunc, info = self._last
            return obs, 0.0, term, trunc, info
        a = np.clip(np.asarray(action, np.float64).reshape(ACTION_DIM), 0.0, 512.0)
        _, reward, terminated, _, info = self.raw.step(a)
        self._t += 1
        success = bool(terminated)
        truncated = self._t >= self.max_steps and not success
        out = (self._obs(), float(reward), success, truncated,
               self._info(info["coverage"], success))
        if success or truncated:
            self._last = out
        return out

    def render(self):
        return self.raw.render()

    def close(self):
        self.raw.close()


# ------------------------------------------------------------------------- the expert
def _outline_candidates(spacing: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Contact points along the T's outline (body frame) with their outward normals."""
    pts, normals = [], []
    n = len(OUTLINE)
    for i in range(n):
        a, b = OUTLINE[i], OUTLINE[(i + 1) % n]
        d = b - a
        length = float(np.linalg.norm(d))
        t = d / length
        normal = np.array([t[1], -t[0]])  # CCW outline: outward is the right-hand normal
        k = max(1, int(round((length - 6.0) / spacing)))
        for s in np.linspace(3.0, length - 3.0, k + 1 if k > 1 else 1):
            pts.append(a + t * s)
            normals.append(normal)
    return np.array(pts), np.array(normals)


class PushTExpert:
    """A scripted PushT expert: greedy one-push lookahead in gym-pusht's own physics.

    ``act(env)`` returns the next agent target for a :class:`PushTEnv` (it reads the true
    agent and T poses).  Each decision evaluates every (contact, direction, length) push
    in a private gym-pusht instance and executes the best as a plan of targets: walk
    around the T (clear of it by the agent radius) to the pre-contact point, settle,
    push, back off.  The plan is re-made when it runs out.
    """

    def __init__(self, rng: np.random.Generator | None = None, push_speed: float = 6.0,
                 travel_speed: float = 30.0, angles_deg=(-30.0, 0.0, 30.0),
                 lengths=(1, 2, 4, 8, 14), travel_cost: float = 0.03):
        raw_cls = require_pusht()
        self.rng = rng or np.random.default_rng(0)
        self.model = raw_cls(obs_type="state", render_mode="rgb_array")
        self.model.reset(seed=0)
        self.push_speed, self.travel_speed = push_speed, travel_speed
        self.angles = np.deg2rad(np.asarray(angles_deg, float))
        self.lengths = tuple(int(x) for x in lengths)
        self.travel_cost = travel_cost
        self.contacts, self.normals = _outline_candidates()
        self.plan: list[np.ndarray] = []
        self.decisions = 0
        self.goal: np.ndarray | None = None  # None: the env's own goal

    def reset(self) -> None:
        self.plan = []
        self.decisions = 0

    # -- the physics copy
    def _set(self, agent, pose) -> None:
        m = self.model
        m.agent.velocity = (0.0, 0.0)
        m.agent.position = (float(agent[0]), float(agent[1]))
        m.block.velocity = (0.0, 0.0)
        m.block.angular_velocity = 0.0
        m.block.angle = float(pose[2])
        m.block.position = (float(pose[0]), float(pose[1]))

    def _snap(self):
        m = self.model
        return (m.agent.position, m.agent.velocity, m.block.position, m.block.angle,
                m.block.velocity, m.block.angular_velocity)

    def _restore(self, s) -> None:
        m = self.model
        (m.agent.position, m.agent.velocity, m.block.position, m.block.angle,
         m.block.velocity, m.block.angular_velocity) = s

    def _step(self, target) -> None:
        """gym-pusht's control step (PD on the agent, 10 physics steps), without its
        coverage computation."""
        m = self.model
        n = int(1 / (m.dt * m.control_hz))
        tx, ty = float(target[0]), float(target[1])
        for _ in range(n):
            px, py = m.agent.position
            vx, vy = m.agent.velocity
            ax = m.k_p * (tx - px) - m.k_v * vx
            ay = m.k_p * (ty - py) - m.k_v * vy
            m.agent.velocity = (vx + ax * m.dt, vy + ay * m.dt)
            m.space.step(m.dt)

    def _pose(self) -> np.ndarray:
        b = self.model.block
        return np.array([b.position[0], b.position[1], b.angle])

    # -- geometry
    @staticmethod
    def cost(pose, goal) -> float:
        """Mean keypoint distance between the T at ``pose`` and at ``goal`` (pixels)."""
        return float(np.linalg.norm(world_points(pose) - world_points(goal), axis=1).mean())

    def _clear(self, p, q, poly, margin: float = 2.0) -> bool:
        from shapely.geometry import LineString, Point

        geom = LineString([p, q]) if np.linalg.norm(np.subtract(p, q)) > 1e-6 else Point(p)
        return geom.distance(poly) > AGENT_R + margin

    def _route(self, start, goal_pt, pose) -> list[np.ndarray]:
        """Waypoints from ``start`` to ``goal_pt`` that keep the agent off the T: straight
        when clear, else out to a circle around the T, along it, and in."""
        from shapely.geometry import Polygon

        poly = Polygon(world_points(pose, OUTLINE))
        start, goal_pt = np.asarray(start, float), np.asarray(goal_pt, float)
        if self._clear(start, goal_pt, poly):
            return [goal_pt]
        c = np.asarray(poly.centroid.coords[0])
        radius = 75.0 + AGENT_R + 12.0
        ang_s = math.atan2(*(start - c)[::-1])
        ang_g = math.atan2(*(goal_pt - c)[::-1])
        pts = []
        d = (ang_g - ang_s + math.pi) % (2 * math.pi) - math.pi
        n = max(1, int(abs(d) / (math.pi / 6)))
        for k in range(n + 1):
            a = ang_s + d * k / n
            pts.append(np.clip(c + radius * np.array([math.cos(a), math.sin(a)]), 20, 492))
        pts.append(goal_pt)
        return pts

    def _walk(self, start, waypoints) -> list[np.ndarray]:
        """Targets at most ``travel_speed`` apart along the waypoints."""
        out, p = [], np.asarray(start, float)
        for w in waypoints:
            w = np.asarray(w, float)
            n = int(np.ceil(np.linalg.norm(w - p) / self.travel_speed))
            for k in range(1, n + 1):
                out.append(p + (w - p) * k / n)
            p = w
        return out

    # -- deciding
    def _decide(self, agent, pose, goal) -> list[np.ndarray]:
        base = self.cost(pose, goal)
        # shorter steps near the goal: the last few pixels need fine pushes
        speed = float(np.clip(base / 4.0, 1.5, self.push_speed))
        plan = self._search(agent, pose, goal, base, speed, self.angles)
        if not plan:  # stuck: finer pushes in more directions
            plan = self._search(agent, pose, goal, base, speed / 2,
                                np.deg2rad([-45.0, -15.0, 15.0, 45.0]))
        return plan

    def _search(self, agent, pose, goal, base: float, speed: float,
                angles) -> list[np.ndarray]:
        R = _rot(float(pose[2]))
        contacts = self.contacts @ R.T + pose[:2]
        normals = self.normals @ R.T
        best, best_val = None, np.inf
        for c, nrm in zip(contacts, normals):
            start = c + nrm * (AGENT_R + 2.0)
            if np.any(start < 8) or np.any(start > 504):
                continue
            for da in angles:
                u = -(_rot(da) @ nrm)
                self._set(start, pose)
                k_done = 0
                for L in self.lengths:
                    while k_done < L:
                        k_done += 1
                        self._step(start + u * speed * k_done)
                    snap = self._snap()
                    self._step(start + u * speed * (k_done - 1.5))  # back off
                    new = self._pose()
                    self._restore(snap)
                    cost = self.cost(new, goal)
                    if cost >= base:  # only pushes that help; the travel cost ranks them
                        continue
                    val = cost + self.travel_cost * float(np.linalg.norm(start - agent))
                    if val < best_val:
                        best_val, best = val, (start, u, L)
        if best is None:
            return []
        start, u, L = best
        plan = self._walk(agent, self._route(agent, start - u * 6.0, pose))
        plan.append(start)  # settle at the contact
        plan += [start + u * speed * k for k in range(1, L + 1)]
        plan.append(start + u * speed * (L - 1.5))
        return plan

    def act(self, env: PushTEnv) -> np.ndarray:
        if not self.plan:
            goal = np.asarray(env.raw.goal_pose if self.goal is None else self.goal, float)
            self.plan = self._decide(env.agent_pos, env.block_pose, goal)
            self.decisions += 1
            if not self.plan:  # no push improves: nudge the agent somewhere near
                self.plan = [np.clip(env.agent_pos + self.rng.normal(0, 20, 2), 20, 492)]
        return np.asarray(self.plan.pop(0), np.float32)


def rollout(env: PushTEnv, seed: int, quality: str = "expert", noise: float = 0.0,
            max_steps: int | None = None, video: list | None = None,
            options: dict | None = None, dart: float = 0.0) -> tuple[dict, dict]:
    """One scripted PushT episode as store records (the tabletop ``rollout``'s contract).

    ``noisy``: Gaussian noise of std ``noise`` x 512 px on every target (the expert stays
    closed loop); ``failed`` (``meta["failure_mode"]``): ``offset`` gives the expert a
    goal 40-60 px and 20-40 degrees off the real one, ``stop_short`` cuts the episode
    20-60% of the way through.  ``reward`` is sparse (1 on the success step) as in every
    robolearn store; ``success`` and the best ``score`` (gym-pusht's coverage reward) are
    what gym-pusht measured.  ``dart > 0``: noise of std ``dart`` x 512 px on the executed
    target only, the expert's target recorded (DART, as the tabletop's)."""
    from robolearn import keys as K
    from robolearn.envs.records import dart_noise, single_task_steps

    rng = np.random.default_rng([seed, 7919])
    perturb = dart_noise(seed, dart * 512.0, 0, 512)
    expert = PushTExpert(rng=np.random.default_rng([seed, 31]))
    max_steps = max_steps or env.max_steps
    failure_mode = str(rng.choice(["offset", "stop_short"])) if quality == "failed" else None
    cut = int(rng.uniform(0.2, 0.6) * 170) if failure_mode == "stop_short" else None
    obs, info = env.reset(seed=seed)
    goal = np.asarray(env.raw.goal_pose, float).copy()
    if failure_mode == "offset":
        ang = rng.uniform(0, 2 * np.pi)
        goal[:2] += rng.uniform(40, 60) * np.array([np.cos(ang), np.sin(ang)])
        goal[2] += rng.choice([-1, 1]) * np.deg2rad(rng.uniform(20, 40))
    expert.goal = goal
    rec: dict[str, list] = {k: [] for k in ("state", "action", "reward", "images")}
    if video is not None:
        video.append(env.render())
    success, best = False, float(info["score"])
    for t in range(max_steps):
        a = expert.act(env)
        if quality == "noisy" and noise > 0:
            a = np.clip(a + rng.normal(0, noise * 512.0, a.shape), 0, 512).astype(np.float32)
        rec["state"].append(obs["state"])
        rec["images"].append(obs.get("images", {}))
        obs, _, term, trunc, info = env.step(perturb(a))
        rec["action"].append(a)
        success, best = bool(info["success"]), max(best, float(info["score"]))
        rec["reward"].append(float(success))
        if video is not None:
            video.append(env.render())
        if term or trunc or (cut is not None and t + 1 >= cut):
            break
    steps = single_task_steps(rec, env.instruction, env.name, env.cameras)
    meta = {K.META_TASK: env.task_name, K.META_INSTRUCTION: env.instruction,
            K.META_SUCCESS: bool(success), K.META_ROBOT: "pusht", K.META_FPS: FPS,
            K.META_ACTION_SPACE: "xy_target", K.META_SOURCE: "pusht/scripted_expert",
            K.META_SEED: int(seed), "quality": quality, "failure_mode": failure_mode,
            "noise": float(noise) if quality == "noisy" else 0.0, "dart": float(dart),
            "score": best,
            "env_id": "gym_pusht/PushT-v0"}
    return steps, meta
