"""Tasks: what an episode asks for, in words and as a plan of primitive skills.

A task draws its arguments from the episode seed (which cube, which target), phrases
them with one of several paraphrased templates, knows the skill sequence a scripted
expert (or later, the planner) runs, and succeeds when the goal conditions of every step
that must still hold at the end are true.  Primitive tasks are one skill; long-horizon
tasks chain several.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from robolearn.envs import scene as S
from robolearn.envs.skills import check_skill, get_skill

Plan = list  # list[tuple[str, dict]]: (skill name, args)


@dataclass(frozen=True)
class TaskSpec:
    """One task family: arguments, instruction paraphrases, expert plan and goal."""

    name: str
    description: str
    templates: tuple[str, ...]
    sample_args: Callable[[np.random.Generator], dict]
    plan: Callable[[dict], Plan]
    #: (skill, args) whose success checks must all hold at the end (default: the whole plan
    #: minus pick steps, whose effect is consumed by the following place)
    goal: Callable[[dict], Plan] | None = None
    drawer_start: str = "closed"  # closed | open
    max_steps: int = 200
    tags: tuple[str, ...] = field(default=())

    def instruction(self, args: dict, rng: np.random.Generator | None = None) -> str:
        i = 0 if rng is None else int(rng.integers(len(self.templates)))
        words = {k: _words(v) for k, v in args.items()}
        return self.templates[i].format(**words)

    def goals(self, args: dict) -> Plan:
        if self.goal is not None:
            return self.goal(args)
        steps = self.plan(args)
        return [s for i, s in enumerate(steps)
                if not (s[0] == "pick" and i + 1 < len(steps) and steps[i + 1][0] == "place")]

    def uses_drawer(self, args: dict) -> bool:
        """Whether the drawer's state is part of the task (a plan step opens or closes it)."""
        return any("drawer" in name for name, _ in self.plan(args))

    def success(self, sim, args: dict) -> bool:
        return all(check_skill(sim, name, a) for name, a in self.goals(args))


def _words(v: str) -> str:
    return {"pad": "target pad"}.get(v, v.replace("_", " "))


def _cube(rng) -> str:
    return str(rng.choice(list(S.CUBES)))


def _two_cubes(rng) -> tuple[str, str]:
    a, b = rng.choice(list(S.CUBES), size=2, replace=False)
    return str(a), str(b)


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("Reach", "move the gripper above a cube",
             ("move the gripper above the {target}", "reach over the {target}",
              "hover above the {target}", "bring your hand over the {target}"),
             lambda r: {"target": _cube(r)}, lambda a: [("reach", a)], max_steps=40,
             tags=("primitive",)),
    TaskSpec("Pick", "pick up a cube",
             ("pick up the {obj}", "grab the {obj}", "lift the {obj} off the table",
              "grasp the {obj} and raise it"),
             lambda r: {"obj": _cube(r)}, lambda a: [("pick", a)], max_steps=80,
             tags=("primitive",)),
    TaskSpec("PickPlace", "pick a cube and place it in the bowl or on the pad",
             ("put the {obj} on the {target}", "place the {obj} onto the {target}",
              "move the {obj} to the {target}", "pick up the {obj} and put it on the {target}",
              "take the {obj} and drop it on the {target}"),
             lambda r: {"obj": _cube(r), "target": str(r.choice(["bowl", "pad"]))},
             lambda a: [("pick", {"obj": a["obj"]}), ("place", dict(a))], max_steps=160,
             tags=("primitive",)),
    TaskSpec("Push", "push a cube onto the target pad",
             ("push the {obj} onto the {target}", "slide the {obj} onto the {target}",
              "nudge the {obj} over to the {target}", "shove the {obj} until it is on the {target}"),
             lambda r: {"obj": _cube(r), "target": "pad"}, lambda a: [("push", dict(a))],
             max_steps=200, tags=("primitive",)),
    TaskSpec("OpenDrawer", "open the drawer",
             ("open the drawer", "pull the drawer open", "slide the drawer out",
              "pull out the drawer"),
             lambda r: {}, lambda a: [("open_drawer", {})], max_steps=100, tags=("primitive",)),
    TaskSpec("CloseDrawer", "close the drawer",
             ("close the drawer", "push the drawer shut", "slide the drawer closed",
              "shut the drawer"),
             lambda r: {}, lambda a: [("close_drawer", {})], drawer_start="open", max_steps=100,
             tags=("primitive",)),
    TaskSpec("BowlThenCloseDrawer", "put a cube in the bowl, then close the drawer",
             ("put the {obj} in the bowl, then close the drawer",
              "place the {obj} into the bowl and afterwards shut the drawer",
              "drop the {obj} in the bowl, then push the drawer closed",
              "first move the {obj} to the bowl, then close the drawer"),
             lambda r: {"obj": _cube(r)},
             lambda a: [("pick", {"obj": a["obj"]}), ("place", {"obj": a["obj"], "target": "bowl"}),
                        ("close_drawer", {})],
             drawer_start="open", max_steps=300, tags=("long_horizon",)),
    TaskSpec("SortBlocks", "one cube into the bowl, another onto the pad",
             ("put the {obj} in the bowl and the {obj2} on the target pad",
              "sort the cubes: {obj} goes in the bowl, {obj2} onto the target pad",
              "place the {obj} into the bowl, then put the {obj2} on the target pad",
              "move the {obj} to the bowl and the {obj2} to the target pad"),
             lambda r: dict(zip(("obj", "obj2"), _two_cubes(r))),
             lambda a: [("pick", {"obj": a["obj"]}), ("place", {"obj": a["obj"], "target": "bowl"}),
                        ("pick", {"obj": a["obj2"]}),
                        ("place", {"obj": a["obj2"], "target": "pad"})],
             max_steps=320, tags=("long_horizon",)),
    TaskSpec("TidyUp", "open the drawer, push a cube onto the pad, put another in the bowl",
             ("open the drawer, push the {obj} onto the target pad and put the {obj2} in the bowl",
              "pull the drawer open, slide the {obj} onto the target pad, then drop the {obj2} "
              "into the bowl",
              "tidy up: drawer open, {obj} on the target pad, {obj2} in the bowl",
              "first open the drawer, then push the {obj} to the target pad and place the {obj2} "
              "in the bowl"),
             lambda r: dict(zip(("obj", "obj2"), _two_cubes(r))),
             lambda a: [("open_drawer", {}), ("push", {"obj": a["obj"], "target": "pad"}),
                        ("pick", {"obj": a["obj2"]}),
                        ("place", {"obj": a["obj2"], "target": "bowl"})],
             max_steps=450, tags=("long_horizon",)),
)}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name]


def step_instruction(skill: str, args: dict) -> str:
    """Language annotation of one plan step (what a skill-conditioned policy is told)."""
    return get_skill(skill).instruction(args)
