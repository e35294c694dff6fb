"""SPRINT-style relabelling: find chains of skills in a trajectory store's per-step
``skill`` annotations and describe each chain in language, so a language-conditioned
policy also learns the longer instructions.

A store's ``skill`` key holds one label per step (``pick(red_block)``, or a bare name).
Consecutive equal labels form a segment; every run of 2..``max_chain`` consecutive segments
in an episode becomes a chain, described in language by

* the library's templates ("pick up the red block, then put the red block on the bowl"),
  deterministic and always available; or
* an LLM (SPRINT's summaries): :class:`LLMSummarizer` prompts any planner backend with
  plan -> instruction pairs from the planner's example bank and asks for one instruction.
  A summary counts only if it is *grounded*: it names exactly the scene entities the chain
  uses (a dropped or invented object would teach the policy the wrong task) and, given a
  planner, the planner reading the summary from the chain's start state plans the same
  outcome as the chain (the summary means what was done).  Otherwise the template is
  kept.  Each row records which one it got (``source``).

The results are written back as the store attribute ``skill_relabels`` (a list of
``{episode, start, stop, skills, instruction, source}``; steps ``start:stop`` of the
episode's own indexing) - the episode data are never rewritten.
"""

from __future__ import annotations

import re

from robolearn.planner.plan import parse_calls
from robolearn.skills.compose import describe_chain
from robolearn.skills.types import SkillCall

ATTR = "skill_relabels"


def scene_entities(skills: dict) -> list[str]:
    """The objects and places the library's skills can name (their parameters' values)."""
    return sorted({v for s in skills.values() for p in s.params for v in p.values})


def chain_entities(chain: list[SkillCall]) -> set[str]:
    """Scene entities a chain acts on: its arguments, and the drawer for drawer skills."""
    ents = {v for c in chain for v in c.kwargs.values()}
    if any("drawer" in c.skill for c in chain):
        ents.add("drawer")
    return ents


def start_state(chain: list[SkillCall], skills: dict) -> frozenset[str] | None:
    """A scene state of the tabletop (blocks on the table, drawer closed or open, the
    gripper empty or holding one block) in which the whole chain is feasible."""
    from robolearn.planner.domain import Domain

    cubes = [o for o in scene_entities(skills) if o.endswith("_block")]
    for drawer in ("drawer_closed", "drawer_open"):
        for held in [None] + cubes:
            facts = [f"at({c},table)" for c in cubes if c != held] + [drawer]
            facts += [f"holding({held})", f"at({held},gripper)"] if held else ["gripper_empty"]
            dom = Domain.build(skills.values(), facts)
            _, checks = dom.simulate(chain)
            if not any(c.error for c in checks):
                return dom.facts
    return None


class LLMSummarizer:
    """SPRINT-style chain summaries by an LLM backend, kept only when grounded.

    ``backend``: any :class:`robolearn.planner.backends.LLMBackend` (embedded llama.cpp,
    an OpenAI-compatible endpoint, a local transformers model).  ``shots`` plan ->
    instruction pairs are taken from ``examples`` (default: the planner's example bank),
    those sharing the most skills with the chain first.
    """

    def __init__(self, backend, examples=None, shots: int = 6, max_words: int = 30,
                 planner=None):
        """``planner``: a :class:`robolearn.planner.Planner` for the round-trip check."""
        from robolearn.planner.examples import EXAMPLES

        self.backend, self.shots, self.max_words = backend, shots, max_words
        self.planner = planner
        self.examples = list(examples if examples is not None else EXAMPLES)
        self.counts = {"llm": 0, "template": 0}

    def prompt(self, chain: list[SkillCall]) -> str:
        names = {c.skill for c in chain}

        def overlap(ex):
            used = {n for n, _ in parse_calls(ex.plan)}
            return (len(used & names), len(used) > 1)

        shots = sorted(self.examples, key=overlap, reverse=True)[: self.shots][::-1]
        lines = ["Describe each robot plan as one short instruction a person would give."]
        for ex in shots:
            lines += [f"Plan: {ex.plan.removesuffix('; done')}", f"Instruction: {ex.instruction}"]
        lines += [f"Plan: {'; '.join(str(c) for c in chain)}", "Instruction:"]
        return "\n".join(lines)

    def grounded(self, text: str, chain: list[SkillCall], skills: dict) -> bool:
        from robolearn.planner.guard import mentions

        words = text.split()
        if not words or len(words) > self.max_words or not re.search(r"[a-z]", text):
            return False
        if set(mentions(text, scene_entities(skills), has_drawer=True)) != chain_entities(chain):
            return False
        return self.planner is None or self.round_trip(text, chain, skills)

    def round_trip(self, text: str, chain: list[SkillCall], skills: dict) -> bool:
        """Does the planner, told ``text`` in the chain's start state, reach the chain's
        end state?"""
        from robolearn.planner.domain import Domain

        start = start_state(chain, skills)
        if start is None:
            return False
        dom = Domain.build(skills.values(), start)
        want, _ = dom.simulate(chain)
        plan = self.planner.plan(text, sorted(start))
        if not plan.ok:
            return False
        got, checks = dom.simulate(plan.steps)
        return not any(c.error for c in checks) and got == want

    def __call__(self, chain: list[SkillCall], skills: dict) -> tuple[str, str]:
        """(instruction, source): the LLM's summary if grounded, else the template."""
        comp = self.backend.complete(self.prompt(chain), max_tokens=40, stop=["\n"])
        text = comp.text.strip().strip('"').rstrip(".").strip()
        if self.grounded(text, chain, skills):
            self.counts["llm"] += 1
            return text, "llm"
        self.counts["template"] += 1
        return describe_chain(chain, skills), "template"


def llm_summarizer(skills: dict, base_url: str = "") -> LLMSummarizer:
    """The CLI's summarizer: the embedded offline model (or an OpenAI-compatible endpoint
    at ``base_url``), round-trip checked by a planner over ``skills``."""
    from robolearn.planner import Planner, make_backend

    backend = (make_backend("openai", base_url=base_url) if base_url
               else make_backend("embedded", threads=1))
    return LLMSummarizer(backend, planner=Planner(list(skills.values()), backend))


def segments(labels: list[str]) -> list[tuple[int, int, str]]:
    """(start, stop, label) runs of equal consecutive labels (empty labels skipped)."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start]:
                out.append((start, i, labels[start]))
            start = i
    return out


def chain_runs(segs: list, max_chain: int):
    """Every run of 2..``max_chain`` consecutive items of ``segs`` (an episode's segments),
    as ``(first index, run)``: the chains relabelling describes."""
    for i in range(len(segs)):
        for n in range(2, min(max_chain, len(segs) - i) + 1):
            yield i, segs[i:i + n]


def _call(label: str, skills: dict) -> SkillCall | None:
    parsed = parse_calls(label if "(" in label else f"{label}()")
    if not parsed or parsed[0][0] not in skills:
        return None
    name, args = parsed[0]
    names = skills[name].param_names
    if len(args) != len(names):  # a bare name for a skill with parameters: keep its words
        return SkillCall(name, tuple((n, n) for n in names)) if not args else None
    return SkillCall(name, tuple(zip(names, args)))


def chain_rows(store, skills: dict, max_chain: int = 3,
               summarizer: LLMSummarizer | None = None) -> list[dict]:
    """Chains with instructions for every episode of an open store (``summarizer``: an
    LLM's grounded summaries; None = templates).  Equal chains are described once."""
    from robolearn import keys as K

    out, memo = [], {}

    def describe(chain):
        key = tuple(str(c) for c in chain)
        if key not in memo:
            memo[key] = summarizer(chain, skills) if summarizer else (
                describe_chain(chain, skills), "template")
        return memo[key]

    labels_all = [str(s) for s in store.read(K.SKILL)]
    for ep, (a, b) in enumerate(zip(store.episode_starts, store.episode_ends)):
        segs = segments(labels_all[a:b])
        calls = [_call(lab, skills) for _, _, lab in segs]
        for i, run in chain_runs(segs, max_chain):
            chain = calls[i:i + len(run)]
            if any(c is None for c in chain):
                continue
            text, source = describe(chain)
            out.append({"episode": ep, "start": run[0][0], "stop": run[-1][1],
                        "skills": [r[2] for r in run], "instruction": text, "source": source})
    return out


def relabel_store(store_url: str, skills: dict, max_chain: int = 3,
                  write: bool = True, summarizer: LLMSummarizer | None = None) -> list[dict]:
    """:func:`chain_rows` of the store at ``store_url``, written back as its ``skill_relabels``
    attribute when ``write``."""
    from robolearn.data.store import TrajectoryStore

    with TrajectoryStore.open(store_url, mode="a" if write else "r") as st:
        out = chain_rows(st, skills, max_chain, summarizer)
        if write:
            st.set_attr(ATTR, out)
    return out
