"""Skill bootstrapping in sim (BOSS): grow the library with composite skills by practice.

Each episode: reset the sim scene, then (1) propose the next skill to chain - LLM-guided
(the model picks among the calls feasible in the observed symbolic state, prompted with
the chain so far) or uniformly at random (the baseline); (2) run it; (3) on failure the
episode ends; (4) every successful chain of >= 2 skills is summarised into a composite
skill (by the LLM when a summarizer is given and its summary is grounded, else the
template; SPRINT-style) and added to the library with provenance, unless an equal chain
is already there.  A run folder keeps ``state.json`` after every episode, so
an interrupted run resumes where it stopped; ``report.json`` records library size over
time and the held-out success of each new skill (fresh seeds).
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from robolearn.skills.compose import composite_skill, describe_chain
from robolearn.skills.symbolic import apply
from robolearn.skills.types import SkillCall

HOLDOUT_SEED = 100_000  # held-out evaluation seeds start here, far from practice seeds


@dataclass
class BootstrapState:
    episodes_done: int = 0
    added: list[dict] = field(default_factory=list)  # {"episode", "name", "chain"}
    library_size: list[int] = field(default_factory=list)  # after each episode
    chain_lengths: list[int] = field(default_factory=list)


def _name(chain: list[SkillCall]) -> str:
    parts = [c.skill + "".join("_" + v.replace("_block", "") for v in c.kwargs.values())
             for c in chain]
    return re.sub(r"[^a-z0-9_]", "", "_".join(parts))[:60]


class Proposer:
    """Picks the next call among the feasible ones."""

    def __init__(self, kind: str = "random", backend=None, seed: int = 0,
                 temperature: float = 1.0):
        """``temperature``: the llm proposer *samples* its choice (BOSS samples the LLM's
        proposals); 0 = always the model's favourite, which practises one chain over and
        over (measured: 2 distinct composites in 10 episodes vs 9 for random)."""
        if kind not in ("random", "llm"):
            raise ValueError(f"proposer must be 'random' or 'llm', got {kind!r}")
        if kind == "llm" and backend is None:
            raise ValueError("the llm proposer needs an LLM backend")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.kind, self.backend, self.rng = kind, backend, random.Random(seed)
        self.temperature = float(temperature)

    def __call__(self, domain, chain: list[SkillCall], options: list[SkillCall]) -> SkillCall:
        if self.kind == "random" or len(options) == 1:
            return self.rng.choice(options)
        lines = ["A robot practises useful tabletop behaviours by chaining skills.\nSkills: "
                 + ", ".join(f"{domain.signature(s)} = {s.description}"
                             for s in domain.skills.values() if s.execution.kind != "composite"),
                 f"Scene: {domain.describe_scene()}",
                 "Chain so far: " + ("; ".join(map(str, chain)) or "(nothing)"),
                 "Next skill:"]
        texts = [f" {o}" for o in options]
        temp = self.temperature
        if self.backend.supports_grammar:
            g = "root ::= " + " | ".join('"' + t + '"' for t in texts) + "\n"
            got = self.backend.complete("\n".join(lines), max_tokens=24, grammar=g,
                                        temperature=temp, seed=self.rng.randrange(2**31)).text
            return next((o for o, t in zip(options, texts) if t == got), options[0])
        scores = self.backend.score("\n".join(lines), texts, average=True)
        if temp <= 0:
            return options[max(range(len(options)), key=scores.__getitem__)]
        top = max(scores)
        weights = [math.exp((sc - top) / temp) for sc in scores]
        return self.rng.choices(options, weights=weights)[0]


def bootstrap(store, task: str, out: str | Path, episodes: int = 10, max_chain: int = 3,
              proposer: Proposer | None = None, holdout_seeds: int = 3, robot: str = "",
              progress: bool = True, summarizer=None) -> dict:
    """Run (or resume) a bootstrap in ``out``; returns the report (also written there).

    ``summarizer``: a :class:`robolearn.skills.relabel.LLMSummarizer` that names new
    skills' behaviour in language (kept when grounded; the template otherwise, and the
    template always stays as a paraphrase); None = the template."""
    from robolearn.planner.domain import Domain
    from robolearn.skills.execute import evaluate_skill, facts_of, make_env, run_call

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    st = BootstrapState(**json.loads(state_path.read_text())) if state_path.exists() \
        else BootstrapState()
    proposer = proposer or Proposer("random")
    env = make_env(task, robot)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, initial=st.episodes_done, desc=f"bootstrap {task}")
    try:
        while st.episodes_done < episodes:
            ep = st.episodes_done
            proposer.rng.seed(ep)
            env.reset(seed=ep)
            skills = {s.name: s for s in store.skills()}
            prims = {n: s for n, s in skills.items() if s.execution.kind != "composite"}
            chain: list[SkillCall] = []
            start = facts_of(env)
            for _ in range(max_chain):
                dom = Domain.build(prims.values(), facts_of(env))
                # feasible calls that change something and undo nothing the chain achieved
                # (no open-then-close); skills without effects (reach) teach nothing here
                achieved = {f for c in chain for f in prims[c.skill].ground(c.kwargs)["add"]
                            if not f.startswith(("holding", "gripper")) and ",gripper)" not in f}
                options = [c for c in dom.feasible(dom.facts)
                           if dom.grounded(c)["add"] and
                           not achieved & (dom.facts - apply(dom.facts, dom.grounded(c)))]
                if not options:
                    break
                call = proposer(dom, chain, options)
                if not run_call(env, call, skills):
                    break
                chain.append(call)
            known = {json.dumps(s.execution.steps) for s in skills.values()}
            steps = [c.to_dict() for c in chain]
            if len(chain) >= 2 and json.dumps(steps) not in known:
                name = _name(chain)
                if not store.exists(name):
                    dom = Domain.build(prims.values(), start)
                    text, source = (summarizer(chain, prims) if summarizer is not None
                                    else (describe_chain(chain, prims), "template"))
                    skill = composite_skill(name, chain, prims, text,
                                            facts=dom.facts, source="bootstrapped",
                                            by=f"bootstrap ({proposer.kind})",
                                            details={"task": task, "episode": ep,
                                                     "description_by": source})
                    store.add(skill, f"bootstrapped in {task}, episode {ep}", "bootstrap")
                    st.added.append({"episode": ep, "name": name,
                                     "chain": [str(c) for c in chain],
                                     "description": text, "description_by": source})
            st.chain_lengths.append(len(chain))
            st.library_size.append(len(store))
            st.episodes_done += 1
            state_path.write_text(json.dumps(asdict(st)))  # resumable after each episode
            if bar:
                bar.update(1)
                bar.set_postfix(added=len(st.added))
    finally:
        env.close()
        if bar:
            bar.close()
    held = []
    for rec in st.added:
        if holdout_seeds and store.exists(rec["name"]):
            r = evaluate_skill(store, rec["name"], task, holdout_seeds, seed=HOLDOUT_SEED)
            held.append({"name": rec["name"], "successes": r["successes"],
                         "attempts": r["attempts"]})
    report = {"task": task, "proposer": proposer.kind, "episodes": st.episodes_done,
              "added": st.added, "library_size": st.library_size,
              "chain_lengths": st.chain_lengths, "heldout": held,
              "heldout_success": (sum(h["successes"] for h in held) /
                                  max(1, sum(h["attempts"] for h in held))) if held else None,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report
