"""Domain randomisation: everything about an episode's scene is drawn from one seed.

``sample_layout`` draws poses (rejection sampling keeps cubes apart and off the bowl, the
pad and the drawer's sweep); ``apply_visuals`` jitters colours, the key light and the fixed
cameras in the compiled model.  Both take a ``numpy.random.Generator``, so an episode is
reproducible from its seed alone.  Values are always set from the nominal model, never
accumulated, so resets do not drift.
"""

from __future__ import annotations

import numpy as np

from robolearn.envs import scene as S
from robolearn.envs.config import RandomizationConfig
from robolearn.envs.geometry import lookat_quat
from robolearn.envs.sim import Layout, TabletopSim


def _drawer_keepout(cab_xy) -> tuple[float, float, float, float]:
    """x0, x1, y0, y1 of the cabinet plus the open drawer's sweep and the gripper around it."""
    hx, hy, _ = S.CABINET_HALF
    return (cab_xy[0] - hx - S.DRAWER_TRAVEL - 0.09, cab_xy[0] + hx,
            cab_xy[1] - hy - 0.06, cab_xy[1] + hy)


def _outside(xy, box, margin: float) -> bool:
    x0, x1, y0, y1 = box
    return not (x0 - margin < xy[0] < x1 + margin and y0 - margin < xy[1] < y1 + margin)


#: largest ``pose_jitter`` (m): cube and pad centres start 14 cm apart, and need 7 cm
JITTER_MAX = 0.035


def _nominal_cubes() -> dict[str, tuple[float, float]]:
    return {n: (0.40, -0.12 + 0.12 * i) for i, n in enumerate(S.CUBES)}


def check_randomization(cfg: RandomizationConfig) -> None:
    """Refuse settings that would build impossible scenes (at construction, not mid-run)."""
    if not 0.0 <= cfg.pose_jitter <= JITTER_MAX:
        raise ValueError(f"randomization.pose_jitter={cfg.pose_jitter} m: must be in "
                         f"[0, {JITTER_MAX}] (larger lets a cube touch the pad or another "
                         "cube); 0 = the fully random layout")
    if cfg.yaw_jitter < 0:
        raise ValueError(f"randomization.yaw_jitter={cfg.yaw_jitter}: must be >= 0 (radians)")
    if not 0.0 <= cfg.drawer_open_prob <= 1.0:
        raise ValueError(f"randomization.drawer_open_prob={cfg.drawer_open_prob}: must be a "
                         "probability in [0, 1] (0 = every task's own drawer start state)")


def sample_layout(rng: np.random.Generator, cfg: RandomizationConfig,
                  drawer_opening: float = 0.0) -> Layout:
    if not cfg.object_poses:
        return Layout(cube_xy=_nominal_cubes(), cube_yaw={n: 0.0 for n in S.CUBES},
                      bowl_xy=S.BOWL_XY, pad_xy=S.PAD_XY, cabinet_xy=S.CABINET_XY,
                      drawer_opening=drawer_opening)
    if cfg.pose_jitter > 0:
        return _jittered_layout(rng, cfg, drawer_opening)
    cab = (S.CABINET_XY[0] + rng.uniform(-0.02, 0.02), S.CABINET_XY[1] + rng.uniform(-0.02, 0.02))
    bowl = (S.BOWL_XY[0] + rng.uniform(-0.05, 0.05), S.BOWL_XY[1] + rng.uniform(-0.03, 0.04))
    keepout = _drawer_keepout(cab)
    while True:
        pad = (rng.uniform(0.40, 0.60), rng.uniform(-0.10, 0.10))
        if np.hypot(pad[0] - bowl[0], pad[1] - bowl[1]) > 0.18 and _outside(pad, keepout, 0.05):
            break
    cubes: dict = {}
    reg = S.CUBE_REGION
    for name in S.CUBES:
        for _ in range(10_000):
            xy = (rng.uniform(*reg.x), rng.uniform(*reg.y))
            ok = (np.hypot(xy[0] - bowl[0], xy[1] - bowl[1]) > S.BOWL_RADIUS + 0.07
                  and np.hypot(xy[0] - pad[0], xy[1] - pad[1]) > S.PAD_HALF + 0.06
                  and _outside(xy, keepout, 0.03)
                  and all(np.hypot(xy[0] - o[0], xy[1] - o[1]) > 0.09 for o in cubes.values()))
            if ok:
                cubes[name] = xy
                break
        else:  # pragma: no cover - the region is far larger than needed
            raise RuntimeError("could not place cubes; the sampling region is too crowded")
    yaws = {n: float(rng.uniform(-np.pi / 4, np.pi / 4)) for n in S.CUBES}
    return Layout(cube_xy=cubes, cube_yaw=yaws, bowl_xy=bowl, pad_xy=pad, cabinet_xy=cab,
                  drawer_opening=drawer_opening)


def _jittered_layout(rng: np.random.Generator, cfg: RandomizationConfig,
                     drawer_opening: float) -> Layout:
    """The nominal scene, every object moved by uniform +-``pose_jitter`` (cubes' yaw by
    +-``yaw_jitter``): the fixed-layout-with-noise regime of LIBERO/robomimic benchmarks."""
    j = cfg.pose_jitter

    def move(xy, r=j):
        return (float(xy[0] + rng.uniform(-r, r)), float(xy[1] + rng.uniform(-r, r)))

    # a row 4 cm nearer the robot than the fixed layout's: 14 cm from the pad's centre
    cubes = {n: move((x - 0.04, y)) for n, (x, y) in _nominal_cubes().items()}
    yaws = {n: float(rng.uniform(-cfg.yaw_jitter, cfg.yaw_jitter)) for n in S.CUBES}
    return Layout(cube_xy=cubes, cube_yaw=yaws, bowl_xy=move(S.BOWL_XY), pad_xy=move(S.PAD_XY),
                  cabinet_xy=move(S.CABINET_XY, min(j, 0.02)), drawer_opening=drawer_opening)


class VisualRandomizer:
    """Remembers the nominal colours/lights/cameras of a model and re-draws them per episode."""

    def __init__(self, sim: TabletopSim, cfg: RandomizationConfig):
        m = sim.model
        self.sim, self.cfg = sim, cfg
        self.geom_rgba = m.geom_rgba.copy()
        self.light_dir = m.light_dir.copy()
        self.light_diffuse = m.light_diffuse.copy()
        self.cam_pos = m.cam_pos.copy()
        self.cam_quat = m.cam_quat.copy()
        self.cube_geoms = [m.geom(n).id for n in S.CUBES]
        self.table = m.geom("table").id
        self.fixed_cams = [(m.camera(c).id, pos, tgt) for c, (pos, tgt, _) in S.CAMERAS.items()]
        self.key_light = m.light("key").id

    def apply(self, rng: np.random.Generator) -> None:
        m, cfg = self.sim.model, self.cfg
        m.geom_rgba[:] = self.geom_rgba
        m.light_dir[:] = self.light_dir
        m.light_diffuse[:] = self.light_diffuse
        m.cam_pos[:] = self.cam_pos
        m.cam_quat[:] = self.cam_quat
        # draw every random number even when a part is disabled: the sequence (and so the
        # layout of later episodes) must not depend on which parts are switched on
        col = rng.uniform(-0.08, 0.08, size=(len(self.cube_geoms), 3))
        table = rng.uniform(-0.12, 0.12, size=3)
        light = rng.normal(0.0, 0.25, size=2), rng.uniform(0.45, 0.8)
        cams = rng.normal(0.0, 1.0, size=(len(self.fixed_cams), 2, 3))
        if cfg.colors:
            for g, dc in zip(self.cube_geoms, col):
                m.geom_rgba[g, :3] = np.clip(self.geom_rgba[g, :3] + dc, 0.0, 1.0)
            m.geom_rgba[self.table, :3] = np.clip(self.geom_rgba[self.table, :3] + table, 0, 1)
        if cfg.lighting:
            d = self.light_dir[self.key_light] + np.r_[light[0], 0.0]
            m.light_dir[self.key_light] = d / np.linalg.norm(d)
            m.light_diffuse[self.key_light] = light[1]
        if cfg.camera_jitter > 0:
            for (cid, pos, tgt), noise in zip(self.fixed_cams, cams):
                p = np.asarray(pos) + cfg.camera_jitter * noise[0]
                t = np.asarray(tgt) + cfg.camera_jitter * noise[1]
                m.cam_pos[cid] = p
                m.cam_quat[cid] = lookat_quat(p, t)
