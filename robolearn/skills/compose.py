"""Composite skills: a chain of skill calls summarised into one new skill (BOSS / SPRINT).

The composite's conditions are derived by running the chain symbolically (regression):
its preconditions are the steps' preconditions that no earlier step provides, its effects
the net change of facts from start to end.  So a planner can use the new skill exactly as
it uses primitives, and validation still holds.
"""

from __future__ import annotations

from robolearn.skills.seed import now
from robolearn.skills.symbolic import apply, holds, normalise, remove
from robolearn.skills.types import Execution, Provenance, Skill, SkillCall, SkillError


def chain_conditions(steps: list[SkillCall], skills: dict[str, Skill],
                     facts: frozenset[str] | None = None) -> dict[str, list[str]]:
    """Pre/add/del of running ``steps`` in order.  ``facts``: a state to run from (needed
    to know which facts a step really removes); default: exactly the chain's preconditions."""
    pre: list[str] = []
    provided: set[str] = set()
    for s in steps:
        if s.skill not in skills:
            raise SkillError(f"composite step {s} uses unknown skill {s.skill!r}")
        g = skills[s.skill].ground(s.kwargs)
        pre += [p for p in g["pre"] if p not in provided and p not in pre]
        provided = remove(provided, g["del"]) | set(g["add"])
    start = normalise(facts if facts is not None else [p for p in pre
                                                       if "*" not in p and
                                                       not p.startswith("reachable")])
    end = start
    for s in steps:
        end = apply(end, skills[s.skill].ground(s.kwargs))
    add = sorted(end - start)
    dele = sorted(f for f in start - end)
    return {"pre": pre, "add": add, "del": dele}


def describe_chain(steps: list[SkillCall], skills: dict[str, Skill]) -> str:
    """Template summary of a chain ("pick up the red block, then put the red block on the
    bowl"); an LLM may rewrite it (SPRINT), this is the deterministic fallback."""
    parts = [skills[s.skill].instruction(s.kwargs) for s in steps]
    return parts[0] if len(parts) == 1 else ", then ".join(parts)


def composite_skill(name: str, steps: list[SkillCall], skills: dict[str, Skill],
                    description: str = "", facts: frozenset[str] | None = None,
                    source: str = "manual", by: str = "", details: dict | None = None
                    ) -> Skill:
    """A new skill that runs ``steps`` in order, with derived conditions."""
    for s in steps:
        skills[s.skill].check_args(s.kwargs) if s.skill in skills else None
    cond = chain_conditions(steps, skills, facts)
    skill = Skill(
        name=name, description=description or describe_chain(steps, skills),
        paraphrases=[describe_chain(steps, skills)] if description else [],
        execution=Execution("composite", steps=[s.to_dict() for s in steps]),
        preconditions=cond["pre"], add_effects=cond["add"], del_effects=cond["del"],
        provenance=Provenance(source, by, now(), dict(details or {})), tags=["composite"])
    skill.check()
    return skill


def expand(call: SkillCall, skills: dict[str, Skill], depth: int = 0) -> list[SkillCall]:
    """Primitive calls a (possibly nested composite) call runs."""
    if depth > 16:
        raise SkillError(f"composite {call.skill!r} nests too deep (a cycle?)")
    skill = skills.get(call.skill)
    if skill is None:
        raise SkillError(f"unknown skill {call.skill!r}")
    if skill.execution.kind != "composite":
        return [call]
    out = []
    for st in skill.execution.steps:
        args = {k: str(v).format(**call.kwargs) for k, v in st.get("args", {}).items()}
        out += expand(SkillCall.make(st["skill"], args), skills, depth + 1)
    return out


def holds_all(facts: frozenset[str], conds: list[str]) -> bool:
    return all(holds(c, facts) for c in conds)
