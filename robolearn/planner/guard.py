"""Refusals and missing-skill requests: what the planner says instead of hallucinating.

Checked before any model runs (cheap, deterministic, explainable):

* empty instruction -> refusal;
* a mention of something the scene lacks ("the yellow block", "the mug") -> refusal
  (impossible);
* a bare "the block" when several blocks could be meant -> refusal (ambiguous), naming
  the candidates;
* a clause no skill covers (its best embedding similarity to any grounded skill sentence or
  stored example is below a threshold: "wipe the table") -> a missing-skill request (HALP)
  that describes the skill wanted.

After planning, :func:`uncovered` checks the plan touches everything the instruction
names; an object left out ("stack the red block on the green block") means the library
cannot express the step, so the planner asks for the missing skill instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from robolearn.skills.types import words

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink",
           "brown", "grey", "gray", "cyan", "magenta")
CUBE_NOUNS = r"(?:block|cube|one)s?"
#: everyday tabletop things that are not in the tabletop scene: naming one is impossible here
FOREIGN_NOUNS = ("cup", "mug", "plate", "bottle", "sponge", "spoon", "fork", "knife", "ball",
                 "apple", "banana", "towel", "shelf", "box", "lid", "door", "pen", "book",
                 "phone", "glass", "can", "sink", "fridge", "oven", "chair", "window")
QUANTIFIERS = r"\b(all|every|each|both|blocks|cubes|everything)\b"
#: clause-to-skill similarity thresholds per embedder: (clause whose verb the library knows or
#: that has no verb, clause with a verb the library never uses).  Single-word embeddings
#: separate verbs badly (MiniLM: "carry"~"bring" 0.47 but "knock"~"take" 0.54), so an
#: unknown verb must be backed by a much closer clause match instead.
HALP_THRESHOLD = {"minilm": (0.5, 0.8), "hash": (0.2, 0.6)}
FILLERS = ("please", "now", "also", "then", "first", "next", "and", "finally", "just", "can",
           "you", "could", "robot")
ARTICLES = ("the", "a", "an", "that", "this", "it")


@dataclass
class Verdict:
    status: str  # ok | refused | missing_skill
    reason: str = ""
    missing: str = ""


def split_clauses(instruction: str) -> list[str]:
    text = instruction.lower().strip()
    text = re.sub(r"^[^:]{0,30}:", "", text)  # "tidy up: ..." -> the listed goals
    parts = re.split(r"[,;.]|\b(?:and then|then|afterwards|after that|finally|first|and)\b",
                     text)
    return [p.strip() for p in parts if p and len(re.findall(r"[a-z]+", p)) >= 1
            and p.strip() not in ("", "and")]


def mentions(text: str, scene_objects: list[str], has_drawer: bool) -> list[str]:
    """Scene entities named in ``text`` (``red_block``, ``bowl``, ``pad``, ``drawer``)."""
    text = text.lower()
    found = []
    for obj in scene_objects:
        if obj.endswith("_block"):
            colour = obj[:-6]
            if re.search(rf"\b{colour}\b", text):
                found.append(obj)
        elif re.search(rf"\b{re.escape(words(obj))}\b|\b{re.escape(obj)}\b", text):
            found.append(obj)
    if has_drawer and re.search(r"\bdrawer\b", text):
        found.append("drawer")
    return found


def precheck(instruction: str, scene_objects: list[str], has_drawer: bool) -> Verdict:
    """Refuse empty, impossible or ambiguous instructions (see module docstring)."""
    text = (instruction or "").strip().lower()
    if not re.search(r"[a-z]", text):
        return Verdict("refused", "empty instruction: say what the robot should do, e.g. "
                                  "'put the red block in the bowl'")
    cubes = [o for o in scene_objects if o.endswith("_block")]
    for colour in COLOURS:
        if re.search(rf"\b{colour}\s+{CUBE_NOUNS}\b", text) and f"{colour}_block" not in cubes:
            return Verdict("refused", f"impossible: there is no {colour} block in the scene "
                                      f"(blocks: {', '.join(words(c) for c in cubes)})")
    for noun in FOREIGN_NOUNS:
        if re.search(rf"\b{noun}s?\b", text):
            return Verdict("refused", f"impossible: there is no {noun} in the scene (objects: "
                                      f"{', '.join(words(o) for o in scene_objects)})")
    if len(cubes) > 1 and not re.search(QUANTIFIERS, text):
        for clause in split_clauses(text):
            bare = re.search(r"\b(?:the|a|that)\s+(?:block|cube)\b", clause)
            if bare and not any(re.search(rf"\b{o[:-6]}\b", clause) for o in cubes):
                return Verdict("refused", f"ambiguous: which block do you mean in '{clause}'? "
                                          f"({', '.join(words(c) for c in cubes)})")
    return Verdict("ok")


def verb(clause: str) -> str:
    """The clause's leading word after fillers ("please then put ..." -> "put")."""
    ws = [w for w in re.findall(r"[a-z]+", clause.lower()) if w not in FILLERS]
    return ws[0] if ws else ""


def known_verbs(references: list[str]) -> set[str]:
    return {verb(c) for r in references for c in split_clauses(r)} - {""}


def uncovered_clauses(clauses: list[str], references: list[str], embedder,
                      thresholds: tuple[float, float], entity_words: set[str]
                      ) -> list[tuple[str, float]]:
    """Clauses no reference sentence covers: best similarity below the first threshold, or
    (for a verb the references never use) below the second."""
    if not clauses:
        return []
    sims = embedder.embed(clauses) @ embedder.embed(references).T  # (C, R)
    best = sims.max(1)
    verbs = known_verbs(references) | entity_words | set(ARTICLES) | set(COLOURS)
    out = []
    for i, (c, s) in enumerate(zip(clauses, best)):
        need = thresholds[0] if verb(c) in verbs else thresholds[1]
        if s < need and i > 0 and re.search(r"\b(it|them)\b", c):
            # "grasp the green block and raise it": judge the pronoun clause together with
            # the clause it refers back to
            joined = clauses[i - 1] + " and " + c
            s = float(np.max(embedder.embed(references) @ embedder.embed([joined])[0]))
            need = thresholds[0] if verb(joined) in verbs else thresholds[1]
        if s < need:
            out.append((c, float(s)))
    return out


def uncovered(plan_steps, named: list[str], skills: dict, scene_objects: list[str],
              facts=frozenset()) -> list[str]:
    """Entities the instruction names that no step of the plan touches (as an argument, in
    a composite's steps, in the step's own words: "close the drawer", or as where a touched
    object starts: "take the red block out of the bowl")."""
    touched = set()
    for s in plan_steps:
        touched.update(s.kwargs.values())
        skill = skills.get(s.skill)
        if skill is None:
            continue
        for sub in skill.execution.steps:
            touched.update(sub.get("args", {}).values())
        touched.update(mentions(skill.instruction(s.kwargs), scene_objects, True))
    for f in facts:
        if f.startswith("at(") and f[3:-1].split(",")[0] in touched:
            touched.add(f[3:-1].split(",")[1])
    return [n for n in named if n not in touched]


def best_similarity(text: str, references: list[str], embedder) -> float:
    return float(np.max(embedder.embed(references) @ embedder.embed([text])[0]))
