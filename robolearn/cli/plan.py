"""``robolearn-plan "<instruction>" --env <Task>``: plan with the skill library, execute in
sim, re-plan on failure, write a report.

    robolearn-plan "put the red block in the bowl, then close the drawer" --env BowlThenCloseDrawer
    robolearn-plan "open the drawer" --env OpenDrawer --preset planner/openai base_url=http://host:8080/v1
    robolearn-plan "slide the blue block onto the target pad" --env Push --no-execute --json

Planner settings come from a preset in ``configs/planner/`` (default ``planner/default``:
offline llama.cpp + SmolLM2) with ``key=value`` overrides.  The run folder gets
``report.json`` (plans, per-step outcomes, re-plans, success), ``report.md`` and, with
``--video``, ``video.gif``.  Exit status: 0 task succeeded (or planned, with --no-execute),
1 failed, 2 refused / missing skill / invalid plan.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="robolearn-plan", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instruction", help="what the robot should do ('-': the env task's own "
                                        "sampled instruction)")
    ap.add_argument("--env", required=True, help="sim task (robolearn/<Task>-v0), e.g. PickPlace")
    ap.add_argument("--seed", type=int, default=0, help="episode seed (scene layout)")
    ap.add_argument("--task-args", nargs="*", default=[],
                    help="fix the task's arguments k=v (e.g. obj=red_block) so its success "
                         "check matches the instruction")
    ap.add_argument("--robot", default="", help="robot model (default: the env's)")
    ap.add_argument("--library", type=Path, default=None, help="skill library file "
                    "(default: $ROBOLEARN_SKILLS or ~/.local/share/robolearn/skills.db)")
    ap.add_argument("--preset", default="planner/default", help="planner preset in configs/")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/plan/<time>)")
    ap.add_argument("--no-execute", action="store_true", help="plan only, do not run the sim")
    ap.add_argument("--video", action="store_true", help="save video.gif of the execution")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("overrides", nargs="*", help="planner config overrides key=value")
    return ap


def _markdown(report: dict) -> str:
    lines = [f"# Plan report: {report['instruction']}", "",
             f"- env: {report['env']} (seed {report['seed']})",
             f"- status: **{report['status']}**, task success: **{report['success']}**, "
             f"plan effects observed: **{report.get('goal_reached')}**, "
             f"re-plans: {report['replans']}", ""]
    for i, p in enumerate(report["plans"]):
        lines.append(f"## plan {i} ({p['status']}, {p['latency_s']} s, {p['backend']}/"
                     f"{p['mode']})")
        lines.append(f"`{p['text']}`" if p["status"] == "ok" else f"{p['reason']} "
                     f"{p['missing']}")
        lines += [f"- repair: {r}" for r in p["repairs"]] + [""]
    if report["steps"]:
        lines += ["## steps", "", "| step | success | seconds |", "|---|---|---|"]
        lines += [f"| {s['call']} | {s['success']} | {s['seconds']} |" for s in report["steps"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    from robolearn.cli.skills import default_library
    from robolearn.config import ConfigError, compose
    from robolearn.planner import BackendError, build_planner
    from robolearn.skills.execute import execute_plan, facts_of, make_env
    from robolearn.skills.seed import seed_store
    from robolearn.skills.store import LibraryError, SkillStore

    try:
        cfg = compose(args.preset, args.overrides)
    except ConfigError as e:
        print(f"robolearn-plan: {e}", file=sys.stderr)
        return 2
    out = args.out or Path("runs/plan") / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    library = args.library or default_library()
    frames = []
    try:
        store = SkillStore(library)
        if len(store) == 0:
            seed_store(store)
        planner = build_planner(store, cfg)
        env = make_env(args.env, args.robot, render=args.video)
        task_args = dict(kv.split("=", 1) for kv in args.task_args)
        _, info = env.reset(seed=args.seed, options={"task_args": task_args})
        if args.instruction.strip() == "-":
            args.instruction = info["instruction"]
        if args.no_execute:
            plan = planner.plan(args.instruction, facts_of(env))
            report = {"instruction": args.instruction, "status": plan.status,
                      "success": None, "replans": 0, "plans": [plan.to_dict()], "steps": []}
        else:
            step = [0]

            def on_step(*_):
                step[0] += 1
                if args.video and step[0] % 4 == 0:
                    frames.append(env.render())
            report = execute_plan(planner, env, args.instruction, cfg.max_replans,
                                  on_step=on_step).to_dict()
        env.close()
    except (LibraryError, BackendError, KeyError, ValueError) as e:
        print(f"robolearn-plan: {e}", file=sys.stderr)
        return 2
    report.update({"env": args.env, "seed": args.seed, "library": str(library),
                   "config": vars(cfg) if hasattr(cfg, "__dict__") else {}})
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.md").write_text(_markdown(report))
    if frames:
        from PIL import Image

        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(out / "video.gif", save_all=True, append_images=imgs[1:], duration=100,
                     loop=0)
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(_markdown(report))
        print(f"report: {out / 'report.md'}")
    if report["status"] in ("refused", "missing_skill", "invalid"):
        return 2
    return 0 if (args.no_execute or report["success"] or report.get("goal_reached")) else 1


if __name__ == "__main__":
    sys.exit(main())
