"""The tabletop simulation: model + data, servo control, queries, rendering, symbolic state.

``TabletopSim`` is what the gymnasium env, the scripted experts and the success checks
share.  It knows nothing about tasks or action spaces: it steps physics with arm joint
targets and a gripper command, and answers questions about the scene.
"""

from __future__ import annotations

import copy
import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede `import mujoco`

from dataclasses import dataclass  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robolearn.envs import scene as S  # noqa: E402
from robolearn.envs.robots import RobotSpec, get_robot  # noqa: E402

PHYSICS_DT = 0.002
INTERP_SUBSTEPS = 10  # physics steps between servo setpoint updates (50 Hz at dt = 2 ms)
#: contact reflex (m): a robot geom pressing deeper than this into a fixture (table,
#: cabinet, drawer, bowl, pad) stops the arm for the rest of the control period, back where
#: it was before the last setpoint chunk, as a real arm's collision reflex stops it (moving
#: out of the contact is never stopped).  The stiff joint servos otherwise drive the hand
#: centimetres into the table when a policy commands a target below it, and the Robotiq
#: linkage squeezed there made MuJoCo's solver diverge (the scene reset mid-episode).
#: Experts and sound policies stay within a few millimetres.
REFLEX_DEPTH = 0.01
#: z above which a released cube counts as not resting on the table
RESTING_TOL = 0.006
DRAWER_OPEN_MIN = 0.11  # opening (m) that counts as open (travel is 0.14)
DRAWER_CLOSED_MAX = 0.01


@dataclass
class Layout:
    """Per-episode scene layout drawn from a seed (see randomize.py)."""

    cube_xy: dict  # name -> (x, y)
    cube_yaw: dict  # name -> yaw
    bowl_xy: tuple
    pad_xy: tuple
    cabinet_xy: tuple
    drawer_opening: float = 0.0


class TabletopSim:
    """Physics and queries of one tabletop scene."""

    def __init__(self, robot: str = "panda", control_hz: float = 10.0,
                 video_size: tuple[int, int] = (320, 240)):
        self.robot: RobotSpec = get_robot(robot)
        self.model = S.build_model(robot, video_size)
        self.data = mujoco.MjData(self.model)
        self.n_substeps = max(1, int(round(1.0 / (control_hz * PHYSICS_DT))))
        self.control_dt = self.n_substeps * PHYSICS_DT
        m, r = self.model, self.robot
        self.arm_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in r.arm_joints])
        self.arm_dofadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in r.arm_joints])
        self.arm_act = np.array([m.actuator(a).id for a in r.arm_actuators])
        self.grip_act = m.actuator(r.gripper_actuator).id
        self.grip_qadr = m.jnt_qposadr[m.joint(r.gripper_joint).id]
        self.ee_site = m.site(r.ee_site).id
        self.joint_range = m.jnt_range[[m.joint(j).id for j in r.arm_joints]].copy()
        self.cube_names = tuple(S.CUBES)
        self.cube_body = {n: m.body(n).id for n in self.cube_names}
        self.cube_geom = {n: m.geom(n).id for n in self.cube_names}
        self.cube_qadr = {n: m.jnt_qposadr[m.joint(n).id] for n in self.cube_names}
        self.cube_dofadr = {n: m.jnt_dofadr[m.joint(n).id] for n in self.cube_names}
        self.pad_left = {m.geom(g).id for g in r.pad_geoms_left}
        self.pad_right = {m.geom(g).id for g in r.pad_geoms_right}
        gb = m.body(r.gripper_base_body).id
        self.gripper_geoms = {g for g in range(m.ngeom) if _is_descendant(m, m.geom_bodyid[g], gb)}
        self.drawer_qadr = m.jnt_qposadr[m.joint("drawer_slide").id]
        self.drawer_dofadr = m.jnt_dofadr[m.joint("drawer_slide").id]
        self.handle_site = m.site("drawer_handle").id
        self.bowl_body, self.pad_body, self.cabinet_body = (m.body(n).id for n in
                                                            ("bowl", "pad", "cabinet"))
        self.home_q = np.array(self.robot.home_qpos)
        self.arm_target = self.home_q.copy()
        self._setpoint = self.home_q.copy()
        self.grip_cmd = 0.0
        # setpoint interpolation: chunks of INTERP_SUBSTEPS physics steps per control period
        k = max(1, self.n_substeps // INTERP_SUBSTEPS)
        self._chunks = [len(c) for c in np.array_split(np.arange(self.n_substeps), k)]
        speed = np.asarray(self.robot.max_joint_speed or [np.inf] * len(self.home_q))
        self._max_step = {n: speed * n * PHYSICS_DT for n in set(self._chunks)}
        self._renderers: dict = {}
        self._pairs_key, self._pairs = None, np.zeros((0, 2), np.int64)
        self._touch_key, self._touch = None, {}
        self._cube_ids = np.array([self.cube_body[n] for n in self.cube_names])
        self._drawer_body = m.body("drawer").id
        root = m.body(m.jnt_bodyid[m.joint(r.arm_joints[0]).id]).id
        while m.body_parentid[root] != 0:
            root = m.body_parentid[root]
        robot = np.array([_is_descendant(m, m.geom_bodyid[g], root) for g in range(m.ngeom)])
        free = np.isin(m.geom_bodyid, self._cube_ids)
        self._robot_geom, self._fixture_geom = robot, ~robot & ~free
        self.reflex = False  # did the contact reflex stop the arm in the last control period

    # ------------------------------------------------------------------ episode setup
    def reset(self, layout: Layout, settle_steps: int = 150) -> None:
        """Put the robot at home, objects where ``layout`` says, and let things settle."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self._pairs_key = self._touch_key = None
        m.body_pos[self.bowl_body][:2] = layout.bowl_xy
        m.body_pos[self.pad_body][:2] = layout.pad_xy
        m.body_pos[self.cabinet_body][:2] = layout.cabinet_xy
        d.qpos[self.arm_qadr] = self.home_q
        for n in self.cube_names:
            a = self.cube_qadr[n]
            yaw = layout.cube_yaw[n]
            d.qpos[a:a + 3] = [*layout.cube_xy[n], S.CUBE_HALF + 0.001]
            d.qpos[a + 3:a + 7] = [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        d.qpos[self.drawer_qadr] = layout.drawer_opening
        self.arm_target = self.home_q.copy()
        self._setpoint = self.home_q.copy()
        self.grip_cmd = 0.0
        self.reflex = False
        self._apply_ctrl()
        mujoco.mj_forward(m, d)
        for _ in range(settle_steps):
            mujoco.mj_step(m, d)

    # ------------------------------------------------------------------ control
    def _apply_ctrl(self) -> None:
        lo, hi = self.joint_range[:, 0], self.joint_range[:, 1]
        self._setpoint = np.clip(self.arm_target, lo, hi)
        self.data.ctrl[self.arm_act] = self._setpoint
        self.data.ctrl[self.grip_act] = float(np.clip(self.grip_cmd, 0, 1)) * \
            self.robot.gripper_ctrl_closed

    def step(self, arm_target: np.ndarray, grip: float) -> None:
        """Move towards joint targets ``arm_target`` with gripper command ``grip``
        (0 open .. 1 closed) for one control period.

        Like a robot's joint trajectory controller, the servo setpoint ramps to the target
        at most at the arm's rated joint speeds (updated every ``INTERP_SUBSTEPS`` physics
        steps): a far-away target - a random action, a policy glitch - becomes a fast but
        bounded motion instead of a torque spike that blows up the simulation.
        """
        lo, hi = self.joint_range[:, 0], self.joint_range[:, 1]
        self.arm_target = np.clip(np.asarray(arm_target, float), lo, hi)
        self.grip_cmd = float(np.clip(grip, 0.0, 1.0))
        d = self.data
        d.ctrl[self.grip_act] = self.grip_cmd * self.robot.gripper_ctrl_closed
        self.reflex = False
        depth = self.fixture_penetration()
        for n in self._chunks:
            if not self.reflex:
                delta = self.arm_target - self._setpoint
                if np.all(np.abs(delta) <= self._max_step[n]):
                    self._setpoint = self.arm_target.copy()  # reachable: hold the target
                else:
                    self._setpoint = self._setpoint + np.clip(delta, -self._max_step[n],
                                                              self._max_step[n])
                d.ctrl[self.arm_act] = self._setpoint
                before = d.qpos[self.arm_qadr].copy()
            mujoco.mj_step(self.model, d, nstep=n)
            if self.reflex:
                continue
            was, depth = depth, self.fixture_penetration()
            if depth > REFLEX_DEPTH and depth > was:  # pressing deeper (backing out is free)
                self.reflex = True  # stop where the arm was before this chunk, and stay
                self._setpoint = before
                d.ctrl[self.arm_act] = before

    def fixture_penetration(self) -> float:
        """Deepest penetration (m) of a robot geom into a fixture in the current contacts."""
        d = self.data
        if d.ncon == 0:
            return 0.0
        g1, g2 = self._contact_pairs().T
        rob, fix = self._robot_geom, self._fixture_geom
        hit = (rob[g1] & fix[g2]) | (rob[g2] & fix[g1])
        return float(-d.contact.dist[:d.ncon][hit].min()) if hit.any() else 0.0

    def instability(self) -> str:
        """"" while the physics is sound; else what MuJoCo reported since the last reset.

        On a NaN/inf/huge position, velocity or acceleration MuJoCo resets the whole scene
        to the model's defaults (objects teleport, the drawer shuts) and goes on: the state
        after that is not the episode's, so whoever steps the sim must end the episode (or
        reset) instead of scoring it."""
        W = mujoco.mjtWarning
        for kind, what in ((W.mjWARN_BADQACC, "acceleration"), (W.mjWARN_BADQVEL, "velocity"),
                           (W.mjWARN_BADQPOS, "position")):
            w = self.data.warning[kind]
            if w.number:
                i = int(w.lastinfo)  # a DOF (velocity, acceleration) or a qpos address
                name = None
                if kind == W.mjWARN_BADQPOS and 0 <= i < self.model.nq:
                    jnt = int(np.searchsorted(self.model.jnt_qposadr, i, side="right") - 1)
                    name = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_JOINT, jnt)
                elif kind != W.mjWARN_BADQPOS and 0 <= i < self.model.nv:
                    name = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_JOINT,
                                             int(self.model.dof_jntid[i]))
                return f"NaN/inf/huge {what} at index {i} (joint {name or '?'})"
        return ""

    # ------------------------------------------------------------------ queries
    @property
    def qpos_arm(self) -> np.ndarray:
        return self.data.qpos[self.arm_qadr].copy()

    @property
    def qvel_arm(self) -> np.ndarray:
        return self.data.qvel[self.arm_dofadr].copy()

    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.ee_site].copy()

    def ee_mat(self) -> np.ndarray:
        return self.data.site_xmat[self.ee_site].reshape(3, 3).copy()

    def ee_pose(self) -> np.ndarray:
        """(7,) position + w-x-y-z quaternion of the pinch site."""
        out = np.empty(7)
        out[:3] = self.data.site_xpos[self.ee_site]
        mujoco.mju_mat2Quat(out[3:], self.data.site_xmat[self.ee_site])
        return out

    def gripper_closure(self) -> float:
        """0 = fully open .. 1 = fully closed (driver joint angle / 0.8 rad)."""
        return float(np.clip(self.data.qpos[self.grip_qadr] / 0.8, 0.0, 1.0))

    def object_pos(self, name: str) -> np.ndarray:
        if name in self.cube_body:
            return self.data.xpos[self.cube_body[name]].copy()
        if name == "bowl":
            return self.data.xpos[self.bowl_body].copy()
        if name == "pad":
            return self.data.xpos[self.pad_body].copy()
        if name in ("drawer", "drawer_handle"):
            return self.data.site_xpos[self.handle_site].copy()
        raise KeyError(f"unknown object {name!r}; known: {list(self.cube_names)} + "
                       f"['bowl', 'pad', 'drawer']")

    def displace_object(self, name: str, dxy) -> None:
        """Move cube ``name`` by ``dxy`` (m) on the table at once, at rest (a scripted slip
        for recovery demos; the caller keeps it clear of the fingers)."""
        a, v = self.cube_qadr[name], self.cube_dofadr[name]
        self.data.qpos[a:a + 2] += np.asarray(dxy, float)[:2]
        self.data.qvel[v:v + 6] = 0.0
        self._pairs_key = self._touch_key = None
        mujoco.mj_forward(self.model, self.data)

    def closing_axis(self) -> np.ndarray:
        """Unit horizontal vector from the left finger pads to the right ones."""
        d = self.data
        left = np.mean([d.geom_xpos[g] for g in self.pad_left], axis=0)
        right = np.mean([d.geom_xpos[g] for g in self.pad_right], axis=0)
        u = (right - left)[:2]
        return u / max(np.linalg.norm(u), 1e-9)

    def object_quat(self, name: str) -> np.ndarray:
        return self.data.xquat[self.cube_body[name]].copy()

    def object_speed(self, name: str) -> float:
        a = self.cube_dofadr[name]
        return float(np.linalg.norm(self.data.qvel[a:a + 3]))

    def drawer_opening(self) -> float:
        return float(self.data.qpos[self.drawer_qadr])

    def _contact_pairs(self) -> np.ndarray:
        """(ncon, 2) geom ids in contact, cached per physics state (one read per step)."""
        d = self.data
        key = (d.time, d.ncon)
        if self._pairs_key != key:
            self._pairs = np.array(d.contact.geom[:d.ncon], dtype=np.int64).reshape(-1, 2)
            self._pairs_key = key
        return self._pairs

    def _contact_geoms(self, geom: int) -> set[int]:
        """Geoms touching ``geom`` now (cached per physics state)."""
        d = self.data
        key = (d.time, d.ncon)
        if self._touch_key != key:
            touch: dict = {}
            for g1, g2 in self._contact_pairs().tolist():
                touch.setdefault(g1, set()).add(g2)
                touch.setdefault(g2, set()).add(g1)
            self._touch, self._touch_key = touch, key
        return self._touch.get(geom, set())

    def touches_gripper(self, name: str) -> bool:
        return bool(self._contact_geoms(self.cube_geom[name]) & self.gripper_geoms)

    def is_grasped(self, name: str) -> bool:
        """Both finger pads touch the cube and the gripper is commanded closed."""
        touching = self._contact_geoms(self.cube_geom[name])
        return bool(touching & self.pad_left) and bool(touching & self.pad_right) \
            and self.grip_cmd > 0.5

    def handle_grasped(self) -> bool:
        touching = self._contact_geoms(self.model.geom("drawer_handle").id)
        return bool(touching & self.pad_left) and bool(touching & self.pad_right)

    def in_bowl(self, name: str) -> bool:
        p = self.object_pos(name)
        c = self.object_pos("bowl")
        return bool(np.linalg.norm(p[:2] - c[:2]) < S.BOWL_RADIUS - S.CUBE_HALF * 0.5
                    and p[2] < S.BOWL_WALL_HEIGHT)

    def on_pad(self, name: str) -> bool:
        """Cube centre over the pad (with a 1 cm inset) and resting on the table."""
        p = self.object_pos(name)
        c = self.object_pos("pad")
        inset = S.PAD_HALF - 0.01
        return bool(np.all(np.abs(p[:2] - c[:2]) <= inset)
                    and abs(p[2] - S.CUBE_HALF) < RESTING_TOL)

    def in_drawer(self, name: str) -> bool:
        p = self.object_pos(name)
        d = self.data.xpos[self.model.body("drawer").id]
        hx, hy, hz = S.CABINET_HALF
        return bool(abs(p[0] - d[0]) < hx and abs(p[1] - d[1]) < hy and p[2] < 2 * hz)

    def location(self, name: str) -> str:
        if self.is_grasped(name):
            return "gripper"
        for loc, test in (("bowl", self.in_bowl), ("pad", self.on_pad),
                          ("drawer", self.in_drawer)):
            if test(name):
                return loc
        return "table"

    def drawer_state(self) -> str:
        o = self.drawer_opening()
        return "open" if o >= DRAWER_OPEN_MIN else ("closed" if o <= DRAWER_CLOSED_MAX
                                                    else "partly_open")

    def symbolic_state(self) -> dict:
        """Facts the planner consumes: where every object is, drawer and gripper state, plus
        the same as sorted predicate strings (``in(red_block,bowl)``, ``drawer_open``...).

        Vectorised over the cubes (it runs every step for ``info``); the per-object
        predicates above define the same tests.
        """
        d, names = self.data, self.cube_names
        P = d.xpos[self._cube_ids].tolist()  # plain floats: 3 cubes, numpy would cost more
        bx, by, _ = d.xpos[self.bowl_body].tolist()
        px, py, _ = d.xpos[self.pad_body].tolist()
        dx, dy, _ = d.xpos[self._drawer_body].tolist()
        hx, hy, hz = S.CABINET_HALF
        r_bowl, inset = S.BOWL_RADIUS - S.CUBE_HALF * 0.5, S.PAD_HALF - 0.01
        locs = {}
        for n, (x, y, z) in zip(names, P):
            if self.is_grasped(n):
                locs[n] = "gripper"
            elif math.hypot(x - bx, y - by) < r_bowl and z < S.BOWL_WALL_HEIGHT:
                locs[n] = "bowl"
            elif abs(x - px) <= inset and abs(y - py) <= inset and \
                    abs(z - S.CUBE_HALF) < RESTING_TOL:
                locs[n] = "pad"
            elif abs(x - dx) < hx and abs(y - dy) < hy and z < 2 * hz:
                locs[n] = "drawer"
            else:
                locs[n] = "table"
        holding = next((n for n, l in locs.items() if l == "gripper"), None)
        drawer_state = self.drawer_state()
        facts = [f"at({n},{l})" for n, l in locs.items()]
        facts += [f"in({n},bowl)" for n, l in locs.items() if l == "bowl"]
        facts += [f"on({n},pad)" for n, l in locs.items() if l == "pad"]
        facts += [f"holding({holding})" if holding else "gripper_empty", f"drawer_{drawer_state}"]
        return {
            "locations": locs,
            "positions": {n: [round(v, 4) for v in p] for n, p in zip(names, P)},
            "in_bowl": sorted(n for n, l in locs.items() if l == "bowl"),
            "on_pad": sorted(n for n, l in locs.items() if l == "pad"),
            "in_drawer": sorted(n for n, l in locs.items() if l == "drawer"),
            "holding": holding,
            "gripper": "closed" if self.grip_cmd > 0.5 else "open",
            "drawer": drawer_state,
            "drawer_opening": round(self.drawer_opening(), 4),
            "facts": sorted(facts),
        }

    # ------------------------------------------------------------------ rendering
    def renderer(self, width: int, height: int, high_quality: bool = False):
        """A cached ``mujoco.Renderer``; learning renderers have shadows, reflections,
        skybox and MSAA off (DESIGN.md section 4), video renderers keep shadows + 4x MSAA."""
        key = (width, height, high_quality)
        if key not in self._renderers:
            m = self.model
            saved = m.vis.quality.offsamples
            m.vis.quality.offsamples = 4 if high_quality else 0  # read when the context is made
            r = mujoco.Renderer(m, height=height, width=width)
            m.vis.quality.offsamples = saved
            flags = r.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(high_quality)
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
            self._renderers[key] = r
        return self._renderers[key]

    def render(self, camera: str, width: int, height: int | None = None,
               high_quality: bool = False, data=None) -> np.ndarray:
        """``data``: render that copy of the sim's ``MjData`` (a :meth:`snapshot`) instead
        of the live one."""
        r = self.renderer(width, height or width, high_quality)
        r.update_scene(self.data if data is None else data,
                       self.robot.wrist_camera if camera == "wrist" else camera)
        return r.render()

    def camera_id(self, camera: str) -> int:
        """MuJoCo id of a learning camera (``wrist`` = this robot's wrist camera)."""
        name = self.robot.wrist_camera if camera == "wrist" else camera
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cid < 0:
            raise ValueError(f"no camera {camera!r} in this scene")
        return cid

    def project(self, camera: str, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> where ``camera`` images them: (N, 3) of u, v (0..1 from
        the image's left and top edges, as its pixel columns and rows run) and 1.0 if the
        point lies in front of the camera and inside the image, else 0.0. Occlusion is not
        checked. The pose is the one :meth:`render` draws now (jittered cameras included)."""
        cid = self.camera_id(camera)
        rot = self.data.cam_xmat[cid].reshape(3, 3)
        # camera frame: x right, y up, looking along -z
        pc = (np.asarray(points, float) - self.data.cam_xpos[cid]) @ rot
        depth = -pc[:, 2]
        f = 0.5 / math.tan(math.radians(float(self.model.cam_fovy[cid])) / 2.0)
        safe = np.where(depth > 1e-6, depth, 1e-6)
        u = 0.5 + f * pc[:, 0] / safe
        v = 0.5 - f * pc[:, 1] / safe
        seen = (depth > 1e-3) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
        return np.stack([u, v, seen.astype(float)], -1).astype(np.float32)

    def snapshot(self):
        """A copy of the sim's ``MjData`` as it is now: :meth:`render` of it later draws
        exactly what a render now would (the same, possibly one-substep-stale, kinematics)."""
        return copy.copy(self.data)

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()


def _is_descendant(model, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = model.body_parentid[body]
    return ancestor == 0
