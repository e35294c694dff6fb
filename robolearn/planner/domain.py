"""The planning domain: the library's skills grounded in one scene.

From the skill records and the scene's symbolic facts this module enumerates every
well-typed skill call (skills x scene objects), says which of them are feasible in a
state (their preconditions hold: SayCan's affordances, taken from symbolic conditions
instead of a learned value function), simulates plans step by step, and writes the
library's grammar for constrained decoding (GBNF, as llama.cpp reads it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Iterable

from robolearn.skills.symbolic import apply, normalise, objects, parse_fact, unmet
from robolearn.skills.types import Skill, SkillCall

DONE = "done"
#: places the sim knows that are not movable objects but can be arguments
FIXTURES = ("bowl", "pad")


@dataclass
class StepCheck:
    """Result of checking one step of a plan against the library and the state."""

    index: int
    call: SkillCall
    error: str = ""  # empty = fine


@dataclass
class Domain:
    """Skills grounded in a scene: typed calls, feasibility, simulation, grammar."""

    skills: dict[str, Skill]
    facts: frozenset[str]
    scene_objects: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, skills: Iterable[Skill], facts: Iterable[str]) -> "Domain":
        facts = normalise(facts)
        objs = objects(facts)
        objs += [f for f in FIXTURES if f not in objs]
        return cls({s.name: s for s in skills}, facts, objs)

    def focus(self, named: list[str], quantified: bool = False) -> "Domain":
        """This domain restricted to the entities an instruction names (all blocks too when
        it quantifies: "all blocks"); skills without parameters stay if their description
        names a kept entity ("open the drawer").  Names nothing: unchanged."""
        from robolearn.planner.guard import mentions

        if not named:
            return self
        keep = set(named)
        if quantified:
            keep |= {o for o in self.scene_objects if o.endswith("_block")}
        skills = {n: s for n, s in self.skills.items()
                  if s.params or set(mentions(s.description, self.scene_objects, True)) & keep}
        return Domain(skills, self.facts, [o for o in self.scene_objects if o in keep])

    # ------------------------------------------------------------------ typing
    def arg_values(self, skill: Skill, param: str) -> list[str]:
        p = next(p for p in skill.params if p.name == param)
        return [v for v in (p.values or self.scene_objects) if v in self.scene_objects]

    def calls(self, skill: Skill) -> list[SkillCall]:
        """Every well-typed call of ``skill`` with this scene's objects."""
        names = skill.param_names
        pools = [self.arg_values(skill, n) for n in names]
        return [SkillCall(skill.name, tuple(zip(names, combo)))
                for combo in itertools.product(*pools)
                if len(set(combo)) == len(combo)]  # the same object twice is never meant

    def all_calls(self) -> list[SkillCall]:
        return [c for s in self.skills.values() for c in self.calls(s)]

    # ------------------------------------------------------------------ semantics
    def grounded(self, call: SkillCall) -> dict[str, list[str]]:
        return self.skills[call.skill].ground(call.kwargs)

    def feasible(self, facts: frozenset[str]) -> list[SkillCall]:
        """Calls whose preconditions hold in ``facts`` and that change something (skills
        without symbolic effects, like ``reach``, are always candidates)."""
        out = []
        for c in self.all_calls():
            g = self.grounded(c)
            no_effects = not (g["add"] or g["del"])
            if not unmet(facts, g) and (no_effects or apply(facts, g) != facts):
                out.append(c)
        return out

    def check(self, call: SkillCall, facts: frozenset[str]) -> str:
        """Why ``call`` can't run in ``facts`` ("" if it can)."""
        skill = self.skills.get(call.skill)
        if skill is None:
            return f"unknown skill {call.skill!r} (library: {sorted(self.skills)})"
        try:
            skill.check_args(call.kwargs)
        except ValueError as e:
            return str(e)
        bad = [v for v in call.kwargs.values() if v not in self.scene_objects]
        if bad:
            return f"{bad} not in the scene (objects: {self.scene_objects})"
        missing = unmet(facts, self.grounded(call))
        return f"{call}: preconditions {missing} do not hold" if missing else ""

    def simulate(self, plan: list[SkillCall], facts: frozenset[str] | None = None
                 ) -> tuple[frozenset[str], list[StepCheck]]:
        """Run ``plan`` symbolically from ``facts``; stops at the first failing step."""
        facts = self.facts if facts is None else facts
        checks = []
        for i, call in enumerate(plan):
            err = self.check(call, facts)
            checks.append(StepCheck(i, call, err))
            if err:
                break
            facts = apply(facts, self.grounded(call))
        return facts, checks

    def achieve(self, goal: list[str], facts: frozenset[str], depth: int = 2
                ) -> list[SkillCall] | None:
        """Shortest sequence (<= ``depth`` calls) of feasible calls after which every fact
        in ``goal`` holds; used to repair a plan that skips a step (a place without pick)."""
        frontier = [(facts, [])]
        for _ in range(depth):
            nxt = []
            for f, seq in frontier:
                for c in self.feasible(f):
                    f2 = apply(f, self.grounded(c))
                    if not unmet(f2, {"pre": goal}):
                        return seq + [c]
                    nxt.append((f2, seq + [c]))
            frontier = nxt
        return None

    # ------------------------------------------------------------------ language
    def signature(self, skill: Skill) -> str:
        return f"{skill.name}({', '.join(skill.param_names)})"

    def describe_scene(self, facts: frozenset[str] | None = None) -> str:
        """Compact scene line for prompts: where each object is, drawer and gripper."""
        facts = self.facts if facts is None else facts
        parts = []
        for f in sorted(facts):
            name, args = parse_fact(f)
            if name == "at" and args[1] != "gripper":
                parts.append(f"{args[0]} {'in' if args[1] in ('bowl', 'drawer') else 'on'} "
                             f"{args[1]}")
            elif name == "holding":
                parts.append(f"holding {args[0]}")
            elif name.startswith("drawer_"):
                parts.append(f"drawer {name[7:]}")
            elif name == "gripper_empty":
                parts.append("gripper empty")
        return ", ".join(parts)

    # ------------------------------------------------------------------ grammar
    def gbnf(self, max_steps: int = 8, calls: list[SkillCall] | None = None,
             prefix: str = " ") -> str:
        """A GBNF grammar of plans: ``prefix`` then 1..max_steps calls joined by "; ", then
        "; done".  With ``calls`` the steps are those exact calls (feasible next steps);
        else every well-typed call of the library in this scene."""
        lines = []
        if calls is not None:
            alts = [_lit(str(c)) for c in calls]
            step_rule = " | ".join(alts) if alts else _lit(DONE)
            lines.append(f"root ::= {_lit(prefix)} ({step_rule} | {_lit(DONE)})")
            return "\n".join(lines) + "\n"
        alts = []
        for s in self.skills.values():
            if not self.calls(s):
                continue
            if not s.params:
                alts.append(_lit(f"{s.name}()"))
                continue
            args = ' ", " '.join(f"{s.name}-{p}" for p in s.param_names)
            alts.append(f'"{s.name}(" {args} ")"')
            for p in s.param_names:
                vals = " | ".join(_lit(v) for v in self.arg_values(s, p))
                lines.append(f"{s.name}-{p} ::= {vals}")
        lines.insert(0, f"step ::= {' | '.join(alts)}")
        lines.insert(0, f'root ::= {_lit(prefix)} step ("; " step){{0,{max_steps - 1}}} '
                        f'"; " {_lit(DONE)}')
        return "\n".join(lines) + "\n"


def _lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
