"""Seed a skill library from the sim's scripted primitives (``robolearn.envs.skills``).

``robolearn.envs`` (gymnasium, and mujoco when a skill runs) is imported inside the
function, so importing :mod:`robolearn.skills` stays light.
"""

from __future__ import annotations

from datetime import datetime, timezone

from robolearn.skills.types import Execution, Param, Provenance, Skill

#: extra wording the planner's retrieval and the missing-skill check match against; the task
#: templates of the sim add more (see :func:`primitive_skills`)
PARAPHRASES = {
    "reach": ["hover above the {target}", "reach over the {target}"],
    "pick": ["grab the {obj}", "lift the {obj}", "grasp the {obj}", "take the {obj}"],
    "place": ["place the {obj} onto the {target}", "drop the {obj} in the {target}",
              "put the {obj} in the {target}", "move the {obj} to the {target}",
              "set the {obj} on the {target}", "bring the {obj} to the {target}",
              "transfer the {obj} to the {target}", "carry the {obj} to the {target}"],
    "push": ["slide the {obj} onto the {target}", "nudge the {obj} to the {target}",
             "shove the {obj} onto the {target}"],
    "open_drawer": ["pull the drawer open", "slide the drawer out", "pull out the drawer"],
    "close_drawer": ["push the drawer shut", "shut the drawer", "slide the drawer closed"],
}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def skill_from_catalog(rec: dict, by: str = "robolearn.skills.seed") -> Skill:
    """One :func:`robolearn.envs.skills.skill_catalog` record as a :class:`Skill`."""
    params = [Param(k, t, list(rec["param_values"][k])) for k, t in rec["params"].items()]
    return Skill(
        name=rec["name"], description=rec["description"], params=params,
        paraphrases=list(PARAPHRASES.get(rec["name"], [])),
        execution=Execution(kind="scripted", primitive=rec["name"]),
        preconditions=list(rec["preconditions"]), add_effects=list(rec["add_effects"]),
        del_effects=list(rec["del_effects"]),
        provenance=Provenance("seeded", by, now(), {"executor": rec.get("executor", "")}),
        tags=["primitive"])


def primitive_skills() -> list[Skill]:
    """The sim's primitives as skill records (imports ``robolearn.envs`` lazily)."""
    from robolearn.envs.skills import skill_catalog

    return [skill_from_catalog(rec) for rec in skill_catalog()]


def seed_store(store, skills: list[Skill] | None = None) -> list[str]:
    """Add every primitive not yet in ``store``; return the names added (idempotent)."""
    added = []
    for skill in skills if skills is not None else primitive_skills():
        if not store.exists(skill.name):
            store.add(skill, message="seeded from the sim's primitives")
            added.append(skill.name)
    return added
