"""Typed skill records: what a skill is called, takes, needs, achieves, runs as and came from.

A :class:`Skill` is a plain dataclass that round-trips through JSON (``to_dict`` /
``from_dict``), so the store can keep every version as one JSON document with a checksum.
Conditions are predicate strings over the sim's symbolic facts (``holding({obj})``,
``drawer_open``), with ``{param}`` placeholders filled by :meth:`Skill.ground`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EXEC_KINDS = ("scripted", "policy", "composite")
PROVENANCE_SOURCES = ("seeded", "bootstrapped", "learned", "imported", "manual")


class SkillError(ValueError):
    """A skill record or call is malformed (names the field and what would fix it)."""


@dataclass
class Param:
    """One typed parameter: ``type`` names a value domain (``object``, ``place_target``)."""

    name: str
    type: str
    values: list[str] = field(default_factory=list)  # allowed values; empty = any scene object


@dataclass
class Execution:
    """How a skill runs: a scripted primitive, a policy checkpoint + instruction, or a chain."""

    kind: str = "scripted"  # scripted | policy | composite
    primitive: str = ""  # scripted: the sim primitive's name (robolearn.envs.skills.SKILLS)
    checkpoint: str = ""  # policy: checkpoint folder
    instruction: str = ""  # policy: language that conditions the policy ("pick up the {obj}")
    steps: list[dict] = field(default_factory=list)  # composite: [{"skill": n, "args": {..}}]


@dataclass
class Provenance:
    """Where a version came from: seeded / bootstrapped / learned / imported / manual."""

    source: str = "manual"
    by: str = ""  # the tool or person ("robolearn.skills.seed", "bootstrap run 3", "alice")
    at: str = ""  # ISO time (UTC)
    details: dict = field(default_factory=dict)


@dataclass
class Skill:
    """A named, parameterised behaviour with language, conditions, execution and provenance."""

    name: str
    description: str  # template over params: "put the {obj} on the {target}"
    params: list[Param] = field(default_factory=list)
    paraphrases: list[str] = field(default_factory=list)
    execution: Execution = field(default_factory=Execution)
    preconditions: list[str] = field(default_factory=list)
    add_effects: list[str] = field(default_factory=list)
    del_effects: list[str] = field(default_factory=list)
    provenance: Provenance = field(default_factory=Provenance)
    tags: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Skill":
        d = dict(d)
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise SkillError(f"skill record has unknown fields {sorted(unknown)}")
        d["params"] = [Param(**p) for p in d.get("params", [])]
        d["execution"] = Execution(**d.get("execution", {}))
        d["provenance"] = Provenance(**d.get("provenance", {}))
        skill = cls(**d)
        skill.check()
        return skill

    # ------------------------------------------------------------------ checks
    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def check(self) -> None:
        """Raise :class:`SkillError` if the record is inconsistent."""
        if not NAME_RE.match(self.name or ""):
            raise SkillError(f"bad skill name {self.name!r}: use lower_snake_case, "
                             "starting with a letter, at most 64 characters")
        if not self.description.strip():
            raise SkillError(f"skill {self.name!r} needs a description")
        names = self.param_names
        if len(set(names)) != len(names):
            raise SkillError(f"skill {self.name!r} has duplicate parameters {names}")
        if self.execution.kind not in EXEC_KINDS:
            raise SkillError(f"skill {self.name!r}: execution kind must be one of {EXEC_KINDS}, "
                             f"got {self.execution.kind!r}")
        if self.execution.kind == "composite" and not self.execution.steps:
            raise SkillError(f"composite skill {self.name!r} needs at least one step")
        if self.execution.kind == "policy" and not self.execution.checkpoint:
            raise SkillError(f"policy skill {self.name!r} needs execution.checkpoint")
        if self.provenance.source not in PROVENANCE_SOURCES:
            raise SkillError(f"skill {self.name!r}: provenance.source must be one of "
                             f"{PROVENANCE_SOURCES}, got {self.provenance.source!r}")
        for text in [self.description, *self.preconditions, *self.add_effects,
                     *self.del_effects]:
            for ph in re.findall(r"{(\w+)}", text):
                if ph not in names:
                    raise SkillError(f"skill {self.name!r}: {{{ph}}} in {text!r} is not a "
                                     f"parameter (parameters: {names})")

    def check_args(self, args: dict) -> None:
        """Raise :class:`SkillError` unless ``args`` binds every parameter to an allowed value."""
        if set(args) != set(self.param_names):
            raise SkillError(f"skill {self.name!r} takes {self.param_names}, got {sorted(args)}")
        for p in self.params:
            if p.values and args[p.name] not in p.values:
                raise SkillError(f"skill {self.name!r}: {p.name}={args[p.name]!r} is not one of "
                                 f"{p.values}")

    # ------------------------------------------------------------------ grounding
    def ground(self, args: dict) -> dict[str, list[str]]:
        """Pre/add/del conditions with the arguments filled in."""
        fill = lambda items: [s.format(**args) for s in items]  # noqa: E731
        return {"pre": fill(self.preconditions), "add": fill(self.add_effects),
                "del": fill(self.del_effects)}

    def effects_hold(self, args: dict, facts) -> bool:
        """Whether the skill's add effects hold and its delete effects do not, in ``facts``
        (how a run of the skill is judged when no sim check names it)."""
        g, facts = self.ground(args), set(facts)
        return set(g["add"]) <= facts and not (set(g["del"]) & facts)

    def instruction(self, args: dict) -> str:
        """The description with arguments in words ("put the red block on the bowl")."""
        return self.description.format(**{k: words(v) for k, v in args.items()})


def words(value: str) -> str:
    """A scene object's name as words (``red_block`` -> ``red block``, ``pad`` -> ``target
    pad``)."""
    return {"pad": "target pad"}.get(value, str(value).replace("_", " "))


@dataclass(frozen=True)
class SkillCall:
    """One step of a plan: a skill name and its arguments, in the parameter order."""

    skill: str
    args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(cls, skill: str, args: dict | None = None) -> "SkillCall":
        return cls(skill, tuple((args or {}).items()))

    @property
    def kwargs(self) -> dict[str, str]:
        return dict(self.args)

    def __str__(self) -> str:
        return f"{self.skill}({', '.join(v for _, v in self.args)})"

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "args": self.kwargs}
