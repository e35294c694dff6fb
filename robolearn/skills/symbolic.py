"""STRIPS-style simulation of skill calls over the sim's symbolic facts.

Facts are predicate strings as :meth:`robolearn.envs.sim.TabletopSim.symbolic_state` writes
them (``at(red_block,table)``, ``in(red_block,bowl)``, ``holding(red_block)``,
``gripper_empty``, ``drawer_open``).  Besides a skill's own add/delete lists, a few domain
rules keep the state consistent (the primitives' effect lists are partial):

* ``at(x, .)`` is single-valued: adding ``at(x,y)`` removes every other ``at(x,z)``;
* ``holding(x)`` means ``at(x,gripper)``; ``at(x,bowl)`` means ``in(x,bowl)`` and
  ``at(x,pad)`` means ``on(x,pad)`` (both ways);
* ``reachable(x)`` is derived: x lies on the table, in the bowl or on the pad;
* ``*`` in a delete effect matches any argument (``at(red_block,*)``).
"""

from __future__ import annotations

import re
from typing import Iterable

FACT_RE = re.compile(r"^(\w+)(?:\(([^)]*)\))?$")
DERIVED = ("reachable",)


def parse_fact(fact: str) -> tuple[str, tuple[str, ...]]:
    m = FACT_RE.match(fact.replace(" ", ""))
    if not m:
        raise ValueError(f"malformed fact {fact!r}; expected name or name(arg,...)")
    return m.group(1), tuple(a for a in (m.group(2) or "").split(",") if a)


def normalise(facts: Iterable[str]) -> frozenset[str]:
    """Close a fact set under the domain rules (see module docstring)."""
    out = set(facts)
    for f in list(out):
        name, args = parse_fact(f)
        if name == "holding":
            out.add(f"at({args[0]},gripper)")
        elif name == "in" and args[1:] == ("bowl",) or name == "on" and args[1:] == ("pad",):
            out.add(f"at({args[0]},{args[1]})")
    for f in list(out):
        name, args = parse_fact(f)
        if name == "at" and args[1] == "bowl":
            out.add(f"in({args[0]},bowl)")
        elif name == "at" and args[1] == "pad":
            out.add(f"on({args[0]},pad)")
        elif name == "at" and args[1] == "gripper":
            out.add(f"holding({args[0]})")
    return frozenset(out)


def holds(fact: str, facts: frozenset[str]) -> bool:
    name, args = parse_fact(fact)
    if name == "reachable":
        return any(f"at({args[0]},{loc})" in facts for loc in ("table", "bowl", "pad"))
    return fact in facts


def objects(facts: Iterable[str]) -> list[str]:
    """Movable objects named in the facts (the first argument of every ``at``)."""
    return sorted({parse_fact(f)[1][0] for f in facts if parse_fact(f)[0] == "at"})


def matches(pattern: str, fact: str) -> bool:
    """Does ``fact`` match ``pattern`` (``*`` = any one argument)?"""
    if "*" not in pattern:
        return pattern == fact
    pn, pa = parse_fact(pattern)
    fn, fa = parse_fact(fact)
    return pn == fn and len(pa) == len(fa) and all(p in ("*", f) for p, f in zip(pa, fa))


def remove(facts: Iterable[str], patterns: Iterable[str]) -> set[str]:
    patterns = list(patterns)
    return {f for f in facts if not any(matches(p, f) for p in patterns)}


def apply(facts: frozenset[str], grounded: dict[str, list[str]]) -> frozenset[str]:
    """Facts after a step whose grounded conditions are ``grounded`` (pre/add/del)."""
    out = remove(facts, grounded["del"])
    for f in grounded["add"]:
        name, args = parse_fact(f)
        if name == "at":  # single-valued location
            out = {g for g in out if not (parse_fact(g)[0] in ("at", "in", "on", "holding")
                                          and parse_fact(g)[1][:1] == args[:1])}
        if name == "holding":
            out = {g for g in out if not (parse_fact(g)[0] in ("at", "in", "on")
                                          and parse_fact(g)[1][:1] == args[:1])}
        out.add(f)
    return normalise(out)


def unmet(facts: frozenset[str], grounded: dict[str, list[str]]) -> list[str]:
    """Preconditions of a grounded step that do not hold in ``facts``."""
    return [p for p in grounded["pre"] if not holds(p, facts)]
