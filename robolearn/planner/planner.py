"""Instruction + symbolic scene -> a validated plan of skill calls.

The pipeline (each step is a function below):

1. check the instruction (:mod:`robolearn.planner.guard`): refusals and missing-skill
   requests come before any model runs;
2. retrieve the k most similar stored examples (LLM-Planner) and build a few-shot prompt:
   the library's skill signatures, the examples, the task, ``Plan:`` and the steps already
   done (re-planning continues from what really happened);
3. decode, by ``mode``:
   ``free``     the model writes the plan; we parse it;
   ``grammar``  decoding constrained to the library grammar (skills x scene objects);
   ``feasible`` one step at a time, constrained to the calls whose preconditions hold in
                the simulated state, or ``done`` (SayCan's affordance idea with symbolic
                conditions in place of value functions);
   ``beam``     like ``feasible`` but keeps the ``beam_width`` best partial plans by model
                log-probability of each step;
   ``nearest``  no model: the nearest example's plan with its objects swapped for the
                instruction's (a retrieval baseline);
4. validate against the library and the scene by symbolic simulation; in free/grammar mode
   optionally repair a skipped enabling step (reported in ``Plan.repairs``); anything else
   invalid is returned as ``invalid``, never executed;
5. check the plan touches every entity the instruction names, else ask for the missing
   skill (HALP).
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import replace
from typing import Iterable

from robolearn.planner import guard
from robolearn.planner.backends import LLMBackend
from robolearn.planner.config import MODES, PlannerConfig
from robolearn.planner.domain import DONE, Domain
from robolearn.planner.plan import Plan, format_plan, parse_calls
from robolearn.planner.retrieval import Example, ExampleBank, get_embedder
from robolearn.skills.symbolic import apply, remove
from robolearn.skills.types import Skill, SkillCall

HEADER = ("Write the robot's plan as skill calls separated by '; ', ending with 'done'. "
          "Use only these skills:\n")


class Planner:
    """Plans with a skill library, an example bank and (except ``nearest``) an LLM backend.

    ``skills``: skill records or a :class:`~robolearn.skills.SkillStore` (read at each call,
    so skills added by bootstrapping are used at once).
    """

    def __init__(self, skills, backend: LLMBackend | None = None,
                 examples: Iterable[Example] | None = None,
                 config: PlannerConfig | None = None, embedder=None):
        self.cfg = config or PlannerConfig()
        if self.cfg.mode not in MODES:
            raise ValueError(f"unknown planner mode {self.cfg.mode!r}; choose from {MODES}")
        if backend is None and self.cfg.mode != "nearest":
            raise ValueError(f"planner mode {self.cfg.mode!r} needs an LLM backend "
                             "(or use mode='nearest')")
        self._skills = skills
        self.backend = backend
        self.embedder = embedder or get_embedder(self.cfg.embedder)
        if examples is None:
            from robolearn.planner.examples import EXAMPLES
            examples = EXAMPLES
        self.bank = ExampleBank(list(examples), self.embedder)
        self._named, self._full, self._done = [], None, []
        self._sample = None  # (temperature, rng) while alternatives() samples

    # ------------------------------------------------------------------ inputs
    def skills(self) -> list[Skill]:
        s = self._skills
        return s.skills() if hasattr(s, "skills") and callable(s.skills) else list(s)

    def add_example(self, instruction: str, plan: str) -> None:
        self.bank.add(Example(instruction, plan))

    def examples_for(self, instruction: str) -> list[Example]:
        k = self.cfg.n_examples
        if not self.cfg.retrieve:
            return self.bank.examples[:k]
        return self.bank.retrieve(instruction, k)

    def prompt(self, domain: Domain, instruction: str, examples: list[Example]) -> str:
        lines = [HEADER]
        for s in domain.skills.values():
            words = s.description.format(**{p: p for p in s.param_names})
            lines.append(f"{domain.signature(s)}: {words}\n")
        lines.append(f"Objects: {', '.join(domain.scene_objects)}\n\n")
        for ex in examples:
            lines.append(f"Task: {ex.instruction}\nPlan: {ex.plan}\n\n")
        lines.append(f"Task: {instruction.strip()}\nPlan:")
        return "".join(lines)

    # ------------------------------------------------------------------ entry points
    def plan(self, instruction: str, facts: Iterable[str],
             done: list[SkillCall] | None = None, start_facts: Iterable[str] | None = None
             ) -> Plan:
        """Plan ``instruction`` in the scene described by ``facts``.

        ``done``: steps already executed successfully (re-planning); the returned plan
        holds only the remaining steps, decoded from the state ``facts`` observed now.
        """
        t0 = time.perf_counter()
        skills = self.skills()
        domain = Domain.build(skills, start_facts if start_facts is not None else facts)
        now = Domain.build(skills, facts).facts
        plan = self._plan(instruction, domain, now, list(done or []))
        plan.latency_s = time.perf_counter() - t0
        plan.backend = self.backend.name if self.backend else "none"
        plan.mode = self.cfg.mode
        return plan

    def alternatives(self, instruction: str, facts: Iterable[str], n: int = 3,
                     temperature: float = 1.0, seed: int = 0) -> list[Plan]:
        """Up to ``n`` distinct valid plans from stochastic step choices (sampled among the
        same constrained options), best model score first: alternatives to offer a user or
        to fall back on when the first plan fails."""
        out: dict[str, Plan] = {}
        for i in range(max(1, 2 * n)):
            self._sample = (temperature, random.Random(seed + i)) if i else None
            try:
                plan = self.plan(instruction, facts)
            finally:
                self._sample = None
            if plan.ok and plan.text() not in out:
                out[plan.text()] = plan
            if len(out) >= n or not plan.ok:
                break
        return sorted(out.values(), key=lambda p: -(p.score or 0.0))

    def replan(self, instruction: str, facts: Iterable[str], done: list[SkillCall],
               failed: SkillCall | None = None) -> Plan:
        """Grounded re-planning (LLM-Planner): continue from what was done and what the
        scene now is; ``failed`` is recorded in the plan's reason for the report."""
        plan = self.plan(instruction, facts, done=done)
        if failed is not None:
            plan.repairs.insert(0, f"re-planned after {failed} failed")
        return plan

    # ------------------------------------------------------------------ pipeline
    def _plan(self, instruction: str, domain: Domain, facts: frozenset[str],
              done: list[SkillCall]) -> Plan:
        has_drawer = any(f.startswith("drawer_") for f in facts)
        named = guard.mentions(instruction, domain.scene_objects, has_drawer)
        if self.cfg.check_instruction:
            v = guard.precheck(instruction, domain.scene_objects, has_drawer)
            if v.status != "ok":
                return Plan(status=v.status, reason=v.reason)
            gap = self._missing_skill(instruction, domain)
            if gap is not None:
                return gap
        examples = self.examples_for(instruction)
        prompt = self.prompt(domain, instruction, examples)
        full = domain
        self._named, self._full, self._done = named, full, done
        if self.cfg.focus:
            domain = domain.focus(named, bool(re.search(guard.QUANTIFIERS, instruction.lower())))
        if done:
            prompt += " " + "; ".join(str(s) for s in done) + ";"
        mode = self.cfg.mode
        if mode == "nearest":
            plan = self._nearest(instruction, full, facts)
        elif mode in ("feasible", "beam"):
            plan = self._stepwise(prompt, domain, facts, beam=self.cfg.beam_width
                                  if mode == "beam" else 1)
        else:
            plan = self._whole(prompt, domain, facts, grammar=mode == "grammar", full=full)
        if plan.status == "ok" and not plan.steps and not done:
            plan = replace(plan, status="invalid", reason="the backend produced an empty plan")
        if plan.status == "ok" and self.cfg.check_instruction:
            left = guard.uncovered(done + plan.steps, named, full.skills, full.scene_objects,
                                   facts)
            coverable = [e for e in left if any(
                not guard.uncovered([c], [e], full.skills, full.scene_objects, facts)
                for c in full.all_calls())]
            if coverable:
                return Plan(status="invalid", raw=plan.raw, steps=plan.steps, score=plan.score,
                            reason=f"the plan leaves out {', '.join(coverable)} although the "
                                   f"library has skills for it")
            if left:
                return Plan(status="missing_skill", raw=plan.raw, steps=plan.steps,
                            reason=f"no plan over the library's skills involves "
                                   f"{', '.join(left)} as the instruction asks",
                            missing=f"a skill for: {instruction.strip()} "
                                    f"(involving {', '.join(left)})")
        return plan

    def _missing_skill(self, instruction: str, domain: Domain) -> Plan | None:
        """HALP: ask for the skill a clause needs when nothing in the library covers it."""
        # 1. an object used as a place the library can't put things ("on the green block")
        targets = {v for s in domain.skills.values() for p in s.params[1:]
                   for v in domain.arg_values(s, p.name)}
        for obj in domain.scene_objects:
            if obj in targets or not obj.endswith("_block"):
                continue
            m = re.search(rf"\b(?:on|onto|in|into|inside|under|next to|beside|behind|on top "
                          rf"of)\s+(?:the\s+)?{obj[:-6]}\s+(?:block|cube)", instruction.lower())
            if m:
                return Plan(status="missing_skill",
                            missing=f"a skill to put an object '{m.group(0)}'",
                            reason=f"no skill in the library takes the {obj.replace('_', ' ')} "
                                   f"as a target ('{m.group(0)}'); add one or bootstrap it")
        # 2. a clause whose wording no skill sentence or stored example resembles
        refs = [domain.skills[c.skill].instruction(c.kwargs) for c in domain.all_calls()]
        refs += [p.format(**{k: "object" for k in s.param_names})
                 for s in domain.skills.values() for p in s.paraphrases]
        refs += [ex.instruction for ex in self.bank.examples]
        thresholds = guard.HALP_THRESHOLD.get(self.embedder.name, (0.3, 0.7))
        if self.cfg.halp_threshold >= 0:
            thresholds = (self.cfg.halp_threshold, max(self.cfg.halp_threshold,
                                                       thresholds[1]))
        entity_words = {w for o in domain.scene_objects for w in o.split("_")} | \
            {"drawer", "target", "block", "cube", "gripper"}
        gaps = guard.uncovered_clauses(guard.split_clauses(instruction), refs, self.embedder,
                                       thresholds, entity_words)
        if not gaps:
            return None
        clause, sim = gaps[0]
        return Plan(status="missing_skill", missing=f"a skill to '{clause}'",
                    reason=f"no skill in the library can '{clause}' (best match similarity "
                           f"{sim:.2f}); add one or bootstrap it")

    # ------------------------------------------------------------------ decoders
    def _whole(self, prompt: str, domain: Domain, facts: frozenset[str],
               grammar: bool, full: Domain) -> Plan:
        """free / grammar: decode the whole plan, then validate (and maybe repair) against
        the whole scene (``full``; ``domain`` may be focused on the named entities)."""
        if grammar and not self.backend.supports_grammar:
            return self._stepwise(prompt, domain, facts, beam=1, typed_only=True)
        g = domain.gbnf(self.cfg.max_steps) if grammar else None
        comp = self.backend.complete(prompt, max_tokens=16 * self.cfg.max_steps, grammar=g,
                                     stop=["\n"])
        return self._validate(comp.text, full, facts, comp.logprob)

    def _validate(self, text: str, domain: Domain, facts: frozenset[str],
                  score: float | None) -> Plan:
        steps, repairs, errors = [], [], []
        for name, args in parse_calls(text)[: self.cfg.max_steps]:
            skill = domain.skills.get(name)
            if skill is None:
                errors.append(f"unknown skill {name!r} (library: {sorted(domain.skills)})")
                break
            if len(args) != len(skill.params):
                errors.append(f"{name} takes {skill.param_names}, got {args}")
                break
            call = SkillCall(name, tuple(zip(skill.param_names, args)))
            err = domain.check(call, facts)
            g = domain.grounded(call) if not err or "preconditions" in err else None
            if self.cfg.repair and g and g["add"] and all(f in facts for f in g["add"]) \
                    and remove(facts, g["del"]) == set(facts):
                repairs.append(f"skipped {call}: its effects already hold")
                continue
            if err and self.cfg.repair and "preconditions" in err:
                fix = domain.achieve(domain.grounded(call)["pre"], facts)
                if fix:
                    repairs.append(f"inserted {format_plan(fix, done=False)} before {call}")
                    for c in fix:
                        facts = apply(facts, domain.grounded(c))
                        steps.append(c)
                    err = domain.check(call, facts)
            if err:
                errors.append(err)
                break
            steps.append(call)
            facts = apply(facts, domain.grounded(call))
        if errors:
            return Plan(steps=steps, status="invalid", reason="; ".join(errors), raw=text,
                        repairs=repairs, score=score)
        return Plan(steps=steps, raw=text, repairs=repairs, score=score)

    def _options(self, domain: Domain, facts: frozenset[str], typed_only: bool,
                 steps: list[SkillCall]) -> list[SkillCall | None]:
        """Next-step candidates: feasible calls (or every typed call), never the previous
        step again, and (``protect``) none that deletes a fact an earlier step added,
        except the gripper's transient ones; plus ``None`` = done."""
        calls = domain.all_calls() if typed_only else domain.feasible(facts)
        if not steps:
            return list(calls)  # an empty plan is never the answer to a checked instruction
        calls = [c for c in calls if c != steps[-1]]
        # a step without symbolic effects (reach) makes no progress twice in one plan
        if any(not (domain.grounded(x)["add"] or domain.grounded(x)["del"]) for x in steps):
            calls = [c for c in calls if domain.grounded(c)["add"] or domain.grounded(c)["del"]]
        if self.cfg.protect and not typed_only and steps:
            achieved = {f for s in steps for f in domain.grounded(s)["add"]
                        if not f.startswith(("holding", "gripper")) and ",gripper)" not in f}
            calls = [c for c in calls if not achieved & (facts - apply(facts, domain.grounded(c)))]
        if self.cfg.focus and not typed_only and self._named:
            # not done while a named entity is untouched and some next step would touch it
            full = self._full
            left = set(guard.uncovered(self._done + steps, self._named, full.skills,
                                       full.scene_objects, full.facts))
            if left and any(left - set(guard.uncovered([c], list(left), full.skills,
                                                       full.scene_objects, facts))
                            for c in calls):
                return list(calls)
        return [*calls, None]

    def _stepwise(self, prompt: str, domain: Domain, facts: frozenset[str], beam: int,
                  typed_only: bool = False) -> Plan:
        """feasible / beam: one step at a time, each chosen among the allowed calls."""
        # beams: (score, steps, facts, finished)
        beams = [(0.0, [], facts, False)]
        for _ in range(self.cfg.max_steps + 1):
            if all(b[3] for b in beams):
                break
            grown = []
            for score, steps, f, fin in beams:
                if fin:
                    grown.append((score, steps, f, fin))
                    continue
                text = prompt + "".join(f" {s};" for s in steps)
                opts = self._options(domain, f, typed_only, steps)
                if len(steps) >= self.cfg.max_steps:
                    opts = [None]
                for opt, lp in self._choose(text, opts, k=beam):
                    if opt is None:
                        grown.append((score + lp, steps, f, True))
                    else:
                        f2 = apply(f, domain.grounded(opt)) if not typed_only else f
                        grown.append((score + lp, steps + [opt], f2, False))
            beams = sorted(grown, key=lambda b: -b[0])[:beam]
        best = max((b for b in beams if b[3]), key=lambda b: b[0], default=beams[0])
        plan = Plan(steps=list(best[1]), raw=format_plan(best[1]), score=best[0])
        if typed_only:  # grammar mode without native grammar support: validate like free
            return self._validate(plan.raw, domain, facts, best[0])
        return plan

    def _choose(self, prompt: str, options: list[SkillCall | None], k: int
                ) -> list[tuple[SkillCall | None, float]]:
        """The ``k`` best options after ``prompt`` with their log-probabilities."""
        texts = [f" {o if o is not None else DONE}" for o in options]
        if len(options) <= 1:
            return [(options[0] if options else None, 0.0)]
        if self._sample is not None and k == 1:
            temp, rng = self._sample
            if self.backend.supports_grammar:
                g = "root ::= " + " | ".join(_lit(t) for t in texts) + "\n"
                comp = self.backend.complete(prompt, max_tokens=24, grammar=g, temperature=temp,
                                             seed=rng.randrange(2**31))
                got = comp.text.strip().rstrip(";")
                return [next(((o, comp.logprob or 0.0) for o, t in zip(options, texts)
                              if t.strip() == got), (None, 0.0))]
            scores = self.backend.score(prompt, texts, average=True)
            w = [math.exp((sc - max(scores)) / max(temp, 1e-6)) for sc in scores]
            i = rng.choices(range(len(options)), weights=w)[0]
            return [(options[i], scores[i])]
        if k == 1 and self.backend.supports_grammar:
            # constrained greedy decoding: one cheap request per step
            g = "root ::= " + " | ".join(_lit(t) for t in texts) + "\n"
            comp = self.backend.complete(prompt, max_tokens=24, grammar=g)
            got = comp.text.strip().rstrip(";")
            for o, t in zip(options, texts):
                if t.strip() == got:
                    return [(o, comp.logprob or 0.0)]
            return [(None, comp.logprob or 0.0)]
        scores = self.backend.score(prompt, texts, average=True)  # no bias to short steps
        order = sorted(range(len(options)), key=lambda i: -scores[i])[:k]
        return [(options[i], scores[i]) for i in order]

    def _nearest(self, instruction: str, domain: Domain, facts: frozenset[str]) -> Plan:
        """Retrieval baseline: the nearest example's plan, objects renamed by mention order."""
        ex = self.bank.retrieve(instruction, 1)
        if not ex:
            return Plan(status="invalid", reason="no stored examples to copy from")
        ex = ex[0]
        objs = [o for o in domain.scene_objects if o.endswith("_block")]
        src = _ordered_mentions(ex.instruction, objs)
        dst = _ordered_mentions(instruction, objs)
        mapping = dict(zip(src, dst))
        text = re.sub(r"\w+_block", lambda m: mapping.get(m.group(0), m.group(0)), ex.plan)
        return self._validate(text, domain, facts, None)


def _ordered_mentions(text: str, cubes: list[str]) -> list[str]:
    hits = sorted((m.start(), c) for c in cubes
                  for m in re.finditer(rf"\b{c[:-6]}\b", text.lower()))
    out = []
    for _, c in hits:
        if c not in out:
            out.append(c)
    return out


def _lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
