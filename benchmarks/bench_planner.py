"""Planner accuracy and latency per backend and decoding mode, on held-out instructions.

    python benchmarks/bench_planner.py [--configs nearest,free,grammar,feasible,...]
                                       [--limit N] [--out results.json]

The held-out set below is written for this benchmark and kept apart from the in-context
examples (:mod:`robolearn.planner.examples`): new paraphrases (unseen verbs and word order),
novel compositions (skill pairs and triples the examples never chain, starting states the
examples never show: a block already in the bowl, one already held), and bad input
(empty / ambiguous / impossible instructions, skills the library lacks).

Metrics per configuration:
  exact  plan text equals a gold plan (bad input: the expected refusal / missing-skill status)
  goal   the plan, simulated symbolically from the start state, ends in the gold plan's state
         (bad input: as exact)
  valid  share of good-input items that got a validated plan
  latency  seconds per instruction (mean, p50), first call (model load) excluded
  exec   (``--execute N``) executable success in sim: for every good-input item and N
         scene seeds, the MuJoCo scene is brought to the item's start state (drawer open or
         closed; a block put in the bowl or held, by running the scripted skills), the
         planner plans from the facts the sim reports, the plan runs with the scripted
         primitives without re-planning, and it counts when the facts the sim reports
         afterwards equal the gold plan's end state (reach has no symbolic effect, so a
         reach-only item can fail only through a wrong side effect)

Baseline in the same run: ``nearest`` (no LLM: the nearest example's plan with objects
swapped), and ``free`` (the LLM writes the plan, LLM-Planner style, then validation).
llama.cpp runs with one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BASE = ["at(red_block,table)", "at(green_block,table)", "at(blue_block,table)",
        "gripper_empty"]
CLOSED, OPEN = BASE + ["drawer_closed"], BASE + ["drawer_open"]
RED_IN_BOWL = ["at(red_block,bowl)", "at(green_block,table)", "at(blue_block,table)",
               "gripper_empty", "drawer_closed"]
HOLD_GREEN = ["at(red_block,table)", "holding(green_block)", "at(blue_block,table)",
              "drawer_closed"]

PP = "pick({o}); place({o}, {t})"
# (instruction, start facts, gold plans (alternatives) or expected status)
HELDOUT = [
    # paraphrases
    ("grasp the green block and raise it", CLOSED, ["pick(green_block); done"]),
    ("lift up the blue cube", CLOSED, ["pick(blue_block); done"]),
    ("hover over the red block", CLOSED, ["reach(red_block); done"]),
    ("bring your hand over the bowl", CLOSED, ["reach(bowl); done"]),
    ("drop the blue block into the bowl", CLOSED, [PP.format(o="blue_block", t="bowl") + "; done"]),
    ("set the red cube down on the target pad", CLOSED,
     [PP.format(o="red_block", t="pad") + "; done"]),
    ("carry the green block to the bowl", CLOSED,
     [PP.format(o="green_block", t="bowl") + "; done"]),
    ("shove the blue block until it is on the target pad", CLOSED, ["push(blue_block, pad); done"]),
    ("nudge the red block over to the target pad", CLOSED, ["push(red_block, pad); done"]),
    ("slide the drawer out", CLOSED, ["open_drawer(); done"]),
    ("pull out the drawer", CLOSED, ["open_drawer(); done"]),
    ("slide the drawer closed", OPEN, ["close_drawer(); done"]),
    ("shut the drawer", OPEN, ["close_drawer(); done"]),
    ("move the green cube onto the target pad", CLOSED,
     [PP.format(o="green_block", t="pad") + "; done"]),
    ("transfer the blue block to the target pad", CLOSED,
     [PP.format(o="blue_block", t="pad") + "; done"]),
    # novel compositions / start states
    ("put the red block in the bowl, then open the drawer", CLOSED,
     [PP.format(o="red_block", t="bowl") + "; open_drawer(); done"]),
    ("open the drawer and push the blue block onto the target pad", CLOSED,
     ["open_drawer(); push(blue_block, pad); done"]),
    ("push the red block onto the target pad, then put the green block in the bowl", CLOSED,
     ["push(red_block, pad); " + PP.format(o="green_block", t="bowl") + "; done"]),
    ("place the green block on the target pad and the blue block in the bowl", CLOSED,
     [PP.format(o="green_block", t="pad") + "; " + PP.format(o="blue_block", t="bowl")
      + "; done"]),
    ("close the drawer, then put the blue block in the bowl", OPEN,
     ["close_drawer(); " + PP.format(o="blue_block", t="bowl") + "; done"]),
    ("first put the red block on the target pad, then close the drawer", OPEN,
     [PP.format(o="red_block", t="pad") + "; close_drawer(); done"]),
    ("grab the green block and drop it in the bowl, then shut the drawer", OPEN,
     [PP.format(o="green_block", t="bowl") + "; close_drawer(); done"]),
    ("sort the cubes: green goes in the bowl, red onto the target pad", CLOSED,
     [PP.format(o="green_block", t="bowl") + "; " + PP.format(o="red_block", t="pad")
      + "; done"]),
    ("open the drawer, then move the red block to the target pad and the blue block to the "
     "bowl", CLOSED, ["open_drawer(); " + PP.format(o="red_block", t="pad") + "; "
                      + PP.format(o="blue_block", t="bowl") + "; done"]),
    ("take the red block out of the bowl and put it on the target pad", RED_IN_BOWL,
     [PP.format(o="red_block", t="pad") + "; done"]),
    ("put the green block you are holding into the bowl", HOLD_GREEN,
     ["place(green_block, bowl); done"]),
    ("hover above the target pad, then pick up the red block", CLOSED,
     ["reach(pad); pick(red_block); done"]),
    ("slide the green block onto the target pad and close the drawer", OPEN,
     ["push(green_block, pad); close_drawer(); done"]),
    # bad input
    ("", CLOSED, "refused"),
    ("put the block in the bowl", CLOSED, "refused"),
    ("pick up the yellow block", CLOSED, "refused"),
    ("put the cup on the target pad", CLOSED, "refused"),
    ("stack the blue block on top of the red block", CLOSED, "missing_skill"),
    ("wipe the table clean", CLOSED, "missing_skill"),
    ("turn on the lamp", CLOSED, "missing_skill"),
    ("rotate the green block by ninety degrees", CLOSED, "missing_skill"),
]

CONFIGS = {
    # name: (backend, PlannerConfig overrides)
    "nearest": ("none", {"mode": "nearest"}),
    "free": ("embedded", {"mode": "free", "repair": False}),
    "free+repair": ("embedded", {"mode": "free"}),
    "grammar": ("embedded", {"mode": "grammar", "focus": False}),
    "grammar+focus": ("embedded", {"mode": "grammar"}),
    "feasible-plain": ("embedded", {"mode": "feasible", "focus": False, "protect": False}),
    "feasible": ("embedded", {"mode": "feasible"}),
    "feasible-noretrieval": ("embedded", {"mode": "feasible", "retrieve": False}),
    "beam3": ("embedded", {"mode": "beam", "beam_width": 3}),
    "openai-http": ("openai", {"mode": "feasible"}),
    "transformers-feasible": ("transformers", {"mode": "feasible"}),
}


def gold_state(domain, facts, plan_text):
    from robolearn.planner.plan import parse_calls
    from robolearn.skills.types import SkillCall

    steps = [SkillCall(n, tuple(zip(domain.skills[n].param_names, a)))
             for n, a in parse_calls(plan_text)]
    end, checks = domain.simulate(steps, domain.facts)
    assert all(not c.error for c in checks), (plan_text, checks)
    return end


def evaluate(planner, items) -> dict:
    from robolearn.planner.domain import Domain

    rows, lat = [], []
    for instruction, facts, gold in items:
        plan = planner.plan(instruction, facts)
        lat.append(plan.latency_s)
        if isinstance(gold, str):
            ok = plan.status == gold
            rows.append({"instruction": instruction, "expected": gold, "got": plan.status,
                         "exact": ok, "goal": ok, "valid": None})
            continue
        domain = Domain.build(planner.skills(), facts)
        exact = plan.ok and plan.text() in gold
        goal = False
        if plan.ok:
            end, checks = domain.simulate(plan.steps, domain.facts)
            goal = not any(c.error for c in checks) and end == gold_state(domain, facts, gold[0])
        rows.append({"instruction": instruction, "expected": gold[0], "got": plan.text()
                     if plan.ok else f"[{plan.status}] {plan.reason[:60]}",
                     "exact": exact, "goal": goal, "valid": plan.ok})
    good = [r for r in rows if r["valid"] is not None]
    return {"n": len(rows), "exact": sum(r["exact"] for r in rows) / len(rows),
            "goal": sum(r["goal"] for r in rows) / len(rows),
            "exact_good": sum(r["exact"] for r in good) / len(good),
            "bad_input": (sum(r["exact"] for r in rows if r["valid"] is None)
                          / (len(rows) - len(good))) if len(rows) > len(good) else float("nan"),
            "valid": sum(bool(r["valid"]) for r in good) / len(good),
            "latency_mean_s": statistics.mean(lat), "latency_p50_s": statistics.median(lat),
            "rows": rows}


#: how to bring the sim scene to a start state: drawer option + setup calls
SETUP = {tuple(CLOSED): ("closed", []), tuple(OPEN): ("open", []),
         tuple(RED_IN_BOWL): ("closed", ["pick(red_block)", "place(red_block, bowl)"]),
         tuple(HOLD_GREEN): ("closed", ["pick(green_block)"])}


def execute(planner, items, seeds: int) -> dict:
    """Executable success of the planner's plans in the MuJoCo scene (see the module doc)."""
    from robolearn.planner.domain import Domain
    from robolearn.planner.plan import parse_calls
    from robolearn.skills.execute import facts_of, make_env, run_call
    from robolearn.skills.types import SkillCall

    skills = {s.name: s for s in planner.skills()}

    def calls(text):
        return [SkillCall(n, tuple(zip(skills[n].param_names, a))) for n, a in parse_calls(text)]

    env = make_env("PickPlace")
    rows = []
    try:
        for instruction, facts, gold in items:
            if isinstance(gold, str):
                continue
            drawer, setup = SETUP[tuple(facts)]
            for seed in range(seeds):
                env.reset(seed=1000 + seed, options={"drawer": drawer})
                if not all(run_call(env, c, skills) for c in calls("; ".join(setup))):
                    rows.append({"instruction": instruction, "seed": seed, "ok": None,
                                 "why": "start state not reached by the scripted setup"})
                    continue
                start = Domain.build(skills.values(), facts_of(env))
                plan = planner.plan(instruction, sorted(start.facts))
                ok, why = False, ""
                if not plan.ok:
                    why = f"no plan: {plan.status}"
                else:
                    ran = all(run_call(env, c, skills) for c in plan.steps)
                    want, _ = start.simulate(calls(gold[0]))
                    now = Domain.build(skills.values(), facts_of(env)).facts
                    ok = ran and now == want
                    why = "" if ok else ("a step failed" if not ran else "goal not reached")
                rows.append({"instruction": instruction, "seed": seed, "plan": plan.text()
                             if plan.ok else plan.status, "ok": ok, "why": why})
    finally:
        env.close()
    counted = [r for r in rows if r["ok"] is not None]
    return {"exec_success": sum(r["ok"] for r in counted) / max(1, len(counted)),
            "exec_trials": len(counted), "exec_rows": rows}


def start_http_server():
    """llama.cpp's OpenAI-compatible server (SmolLM2) in a child process on loopback."""
    proc = subprocess.Popen([sys.executable, "-m", "robolearn.planner.serve", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="nearest,free,free+repair,grammar,grammar+focus,"
                                         "feasible-plain,feasible,feasible-noretrieval,"
                                         "openai-http")
    ap.add_argument("--limit", type=int, default=0, help="first N held-out items only")
    ap.add_argument("--embedder", default="auto")
    ap.add_argument("--execute", type=int, default=0, metavar="N",
                    help="also run every good-input plan in sim on N scene seeds")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    from robolearn.planner import Planner, PlannerConfig, make_backend
    from robolearn.planner.backends import smollm2_gguf
    from robolearn.skills import primitive_skills

    skills = primitive_skills()
    items = HELDOUT[: args.limit] if args.limit else HELDOUT
    backends, results, server = {}, {}, None
    try:
        for name in args.configs.split(","):
            kind, over = CONFIGS[name]
            t0 = time.perf_counter()
            if kind not in backends and kind != "none":
                if kind == "embedded":
                    backends[kind] = make_backend("embedded", threads=1)
                elif kind == "openai":
                    server, url = start_http_server()
                    backends[kind] = make_backend("openai", base_url=url, timeout_s=120)
                elif kind == "transformers":
                    p = smollm2_gguf()
                    backends[kind] = make_backend("transformers", path=p.parent,
                                                  gguf_file=p.name, threads=1)
            load_s = time.perf_counter() - t0
            cfg = PlannerConfig(backend=kind, embedder=args.embedder, **over)
            planner = Planner(skills, backends.get(kind), config=cfg)
            planner.plan("pick up the red block", CLOSED)  # warm-up: embedder, prompt cache
            r = evaluate(planner, items)
            r["load_s"] = load_s
            if args.execute:
                r.update(execute(planner, items, args.execute))
            results[name] = r
            ex = (f"  exec {r['exec_success']:.2f} ({r['exec_trials']} runs)"
                  if args.execute else "")
            print(f"{name:22s} exact {r['exact']:.2f}  goal {r['goal']:.2f}  "
                  f"good-exact {r['exact_good']:.2f}  bad-input {r['bad_input']:.2f}  "
                  f"valid {r['valid']:.2f}{ex}  latency mean {r['latency_mean_s']:.2f}s "
                  f"p50 {r['latency_p50_s']:.2f}s", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    if "free" in results:
        base = results["free"]["exact"]
        for name, r in results.items():
            print(f"{name:22s} exact-match ratio vs free: "
                  f"{r['exact'] / base if base else float('inf'):.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
