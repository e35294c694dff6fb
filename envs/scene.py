"""The tabletop cell as an ``MjSpec``: table, arm, three cubes, a bowl, a target pad, a cabinet
with a sliding drawer, cameras and lights.

The model is built once per env; per-episode variation (poses, colours, lights, camera
jitter) is written into the compiled ``MjModel`` at reset by :mod:`robolearn.envs.randomize`.
Rendering settings follow DESIGN.md section 4: no multisampling for learning cameras, a
coarse floor grid, low-poly robot meshes, shadows only in the video renderer.

World frame: robot base at the origin, table top at z = 0, +x away from the robot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robolearn.envs.geometry import lookat_quat
from robolearn.envs.robots import robot_spec

CUBE_HALF = 0.02
#: cube name -> nominal RGB (randomisation jitters around it; the name stays true)
CUBES = {"red_block": (0.85, 0.12, 0.12), "green_block": (0.15, 0.70, 0.20),
         "blue_block": (0.15, 0.30, 0.90)}
BOWL_RADIUS = 0.075  # inner radius of the bowl's wall ring
BOWL_WALL_HEIGHT = 0.045
PAD_HALF = 0.045
CABINET_HALF = (0.10, 0.10, 0.06)  # x, y, z half sizes of the cabinet shell
DRAWER_TRAVEL = 0.14  # slide range (m); 0 = closed
HANDLE_OFFSET = np.array([-0.128, 0.0, 0.09])  # handle tab centre in the drawer frame (closed)

#: nominal placements (x, y) the randomiser perturbs
BOWL_XY = (0.52, -0.25)
PAD_XY = (0.50, 0.0)
CABINET_XY = (0.66, 0.30)
#: fixed camera: name -> (position, look-at point, fovy)
CAMERAS = {"front": ((1.10, 0.0, 0.62), (0.40, 0.0, 0.06), 52.0),
           "overhead": ((0.50, 0.0, 1.25), (0.50, 0.0, 0.0), 50.0)}


@dataclass(frozen=True)
class Region:
    """An axis-aligned table region (x range, y range) objects may be sampled in."""

    x: tuple[float, float]
    y: tuple[float, float]


CUBE_REGION = Region((0.32, 0.62), (-0.30, 0.16))


def _box(body, name, pos, size, rgba, contype=1, **kw):
    import mujoco

    return body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=pos, size=size,
                         rgba=rgba, contype=contype, conaffinity=contype, **kw)


def _add_bowl(world) -> None:
    import mujoco

    bowl = world.add_body(name="bowl", pos=[*BOWL_XY, 0.0])
    rgba = [0.85, 0.85, 0.80, 1.0]
    bowl.add_geom(name="bowl_base", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                  size=[BOWL_RADIUS + 0.006, 0.004, 0], pos=[0, 0, 0.004], rgba=rgba)
    n = 16
    for k in range(n):
        a = 2 * np.pi * k / n
        _box(bowl, f"bowl_wall{k}", [np.cos(a) * (BOWL_RADIUS + 0.006),
                                     np.sin(a) * (BOWL_RADIUS + 0.006), BOWL_WALL_HEIGHT / 2],
             [0.006, (BOWL_RADIUS + 0.006) * np.tan(np.pi / n) + 0.002, BOWL_WALL_HEIGHT / 2],
             rgba, quat=[np.cos(a / 2), 0, 0, np.sin(a / 2)])


def _add_cabinet(world) -> None:
    import mujoco

    hx, hy, hz = CABINET_HALF
    cab = world.add_body(name="cabinet", pos=[*CABINET_XY, 0.0])
    wood = [0.55, 0.40, 0.28, 1.0]
    t = 0.005
    _box(cab, "cabinet_bottom", [0, 0, t], [hx, hy, t], wood)
    _box(cab, "cabinet_top", [0, 0, 2 * hz - t], [hx, hy, t], wood)
    _box(cab, "cabinet_left", [0, hy - t, hz], [hx, t, hz], wood)
    _box(cab, "cabinet_right", [0, -hy + t, hz], [hx, t, hz], wood)
    _box(cab, "cabinet_back", [hx - t, 0, hz], [t, hy, hz], wood)
    drawer = cab.add_body(name="drawer", pos=[0, 0, 0])
    drawer.add_joint(name="drawer_slide", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[-1, 0, 0],
                     range=[0.0, DRAWER_TRAVEL], damping=8.0, frictionloss=0.3, armature=0.05)
    front = [0.80, 0.72, 0.55, 1.0]
    inner_y = hy - 2 * t - 0.002
    _box(drawer, "drawer_bottom", [0.0, 0, 2 * t + 0.004], [hx - 0.012, inner_y, 0.004], front,
         mass=0.3)
    _box(drawer, "drawer_side_l", [0.0, inner_y - 0.004, 0.04], [hx - 0.012, 0.004, 0.028], front,
         mass=0.05)
    _box(drawer, "drawer_side_r", [0.0, -inner_y + 0.004, 0.04], [hx - 0.012, 0.004, 0.028],
         front, mass=0.05)
    _box(drawer, "drawer_back", [hx - 0.016, 0, 0.04], [0.004, inner_y, 0.028], front, mass=0.05)
    _box(drawer, "drawer_front", [-hx - 0.006, 0, hz], [0.006, hy, hz - 0.008], front, mass=0.1)
    # a tab handle sticking out of the front: thin in y so the gripper closes across it
    _box(drawer, "drawer_handle", HANDLE_OFFSET.tolist(), [0.022, 0.006, 0.012],
         [0.2, 0.2, 0.22, 1.0], mass=0.02, friction=[1.2, 0.01, 0.001])
    drawer.add_site(name="drawer_handle", pos=HANDLE_OFFSET.tolist(), size=[0.004, 0, 0])


def build_spec(robot: str = "panda", video_size: tuple[int, int] = (320, 240)):
    """The full scene spec for arm ``robot`` (compile with ``spec.compile()``)."""
    import mujoco

    spec = robot_spec(robot)
    spec.modelname = f"robolearn_tabletop_{robot}"
    opt = spec.option
    opt.timestep = 0.002
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0
    vis = spec.visual
    vis.quality.offsamples = 0  # learning cameras: no MSAA (the video renderer raises it)
    vis.quality.shadowsize = 1024
    vis.global_.offwidth = max(640, video_size[0])
    vis.global_.offheight = max(480, video_size[1])
    vis.headlight.ambient = [0.35, 0.35, 0.35]
    vis.headlight.diffuse = [0.35, 0.35, 0.35]
    vis.headlight.specular = [0.0, 0.0, 0.0]
    spec.stat.center = [0.45, 0.0, 0.1]
    spec.stat.extent = 1.0

    world = spec.worldbody
    world.add_light(name="key", pos=[0.4, -0.6, 1.6], dir=[0.0, 0.35, -1.0],
                    diffuse=[0.6, 0.6, 0.6], specular=[0.1, 0.1, 0.1], castshadow=True,
                    type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    # coarse grid (third size value) keeps llvmpipe fast
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.5],
                   pos=[0, 0, -0.75], rgba=[0.35, 0.37, 0.40, 1])
    _box(world, "table", [0.40, 0.0, -0.025], [0.55, 0.65, 0.025], [0.62, 0.60, 0.56, 1],
         friction=[0.8, 0.005, 0.0001])
    for name, rgb in CUBES.items():
        body = world.add_body(name=name, pos=[0.4, 0.0, CUBE_HALF])
        body.add_freejoint(name=name)
        _box(body, name, [0, 0, 0], [CUBE_HALF] * 3, [*rgb, 1.0], mass=0.06,
             friction=[1.0, 0.005, 0.0001])
    _add_bowl(world)
    pad = world.add_body(name="pad", pos=[*PAD_XY, 0.0])
    _box(pad, "pad", [0, 0, 0.0008], [PAD_HALF, PAD_HALF, 0.0008], [0.95, 0.80, 0.10, 1],
         contype=0)
    _add_cabinet(world)
    for cam, (pos, target, fovy) in CAMERAS.items():
        world.add_camera(name=cam, pos=list(pos), quat=lookat_quat(pos, target).tolist(),
                         fovy=fovy)
    return spec


def build_model(robot: str = "panda", video_size: tuple[int, int] = (320, 240)):
    """Compile the scene into an ``MjModel``."""
    return build_spec(robot, video_size).compile()
