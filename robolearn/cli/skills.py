"""``robolearn-skills``: curate the skill library (list, show, add, edit, rename, remove,
merge, history, revert, eval, relabel, bootstrap, export, import, seed, salvage).

The library is one SQLite file: ``--library PATH``, else ``$ROBOLEARN_SKILLS``, else
``~/.local/share/robolearn/skills.db``.  A new library is seeded from the sim's primitive
skills.  Every change is a new version (``history``, ``revert``).  Tables for people,
``--json`` for scripts; destructive verbs ask first unless given ``--yes``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EPILOG = """examples:
  robolearn-skills list
  robolearn-skills show place --json
  robolearn-skills add bin_red --composite "pick(red_block); place(red_block, bowl)" \\
      --description "put the red block away in the bowl"
  robolearn-skills edit pick --paraphrase "snatch the {obj}"
  robolearn-skills history pick && robolearn-skills revert pick 1
  robolearn-skills merge --suggest          # near-duplicates by description + behaviour
  robolearn-skills eval pick --env Pick --seeds 5
  robolearn-skills export lib.json && robolearn-skills --library other.db import lib.json
"""


def default_library() -> Path:
    env = os.environ.get("ROBOLEARN_SKILLS")
    if env:
        return Path(env)
    return Path.home() / ".local" / "share" / "robolearn" / "skills.db"


# ---------------------------------------------------------------------------- output
def _table(rows: list[dict], cols: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _emit(args, data, text: str) -> None:
    print(json.dumps(data, indent=1, default=str) if args.json else text)


def _confirm(args, what: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"refusing to {what} without confirmation: pass --yes", file=sys.stderr)
        return False
    return input(f"{what}? [y/N] ").strip().lower() in ("y", "yes")


def _row(store, s) -> dict:
    rate = store.success_rate(s.name)
    att = sum(r["attempts"] for r in store.stats(s.name))
    return {"name": s.name, "params": ", ".join(s.param_names), "kind": s.execution.kind,
            "source": s.provenance.source, "version": store.current_version(s.name),
            "success": "-" if rate is None else f"{rate:.0%} of {att}",
            "description": s.description}


# ---------------------------------------------------------------------------- verbs
def cmd_list(store, args):
    rows = [_row(store, s) for s in store.skills()
            if not args.source or s.provenance.source == args.source]
    _emit(args, rows, _table(rows, ["name", "params", "kind", "source", "version", "success",
                                    "description"]))


def cmd_show(store, args):
    s = store.get(args.name, args.version)
    data = {**s.to_dict(), "version": args.version or store.current_version(s.name),
            "stats": store.stats(s.name)}
    lines = [f"{s.name}({', '.join(s.param_names)})  v{data['version']}  "
             f"[{s.execution.kind}, {s.provenance.source}]", f"  {s.description}"]
    lines += [f"  also: {p}" for p in s.paraphrases]
    for p in s.params:
        lines.append(f"  param {p.name}: {p.type} in {p.values or 'any scene object'}")
    if s.execution.kind == "composite":
        lines.append("  steps: " + "; ".join(f"{st['skill']}({', '.join(st['args'].values())})"
                                             for st in s.execution.steps))
    lines += [f"  pre:  {', '.join(s.preconditions) or '-'}",
              f"  add:  {', '.join(s.add_effects) or '-'}",
              f"  del:  {', '.join(s.del_effects) or '-'}",
              f"  from: {s.provenance.source} by {s.provenance.by or '?'} at "
              f"{s.provenance.at or '?'}"]
    for r in data["stats"]:
        lines.append(f"  stats v{r['version']} {r['env']}: {r['successes']}/{r['attempts']}")
    _emit(args, data, "\n".join(lines))


def cmd_add(store, args):
    from robolearn.skills.compose import composite_skill
    from robolearn.skills.types import Execution, Param, Provenance, Skill, SkillCall

    if args.file:
        skill = Skill.from_dict(json.loads(Path(args.file).read_text()))
    elif args.composite:
        lib = {s.name: s for s in store.skills()}
        steps = []
        from robolearn.planner.plan import parse_calls

        for n, a in parse_calls(args.composite):
            if n not in lib:
                raise SystemExit(f"composite step {n}() is not in the library: {sorted(lib)}")
            steps.append(SkillCall(n, tuple(zip(lib[n].param_names, a))))
        skill = composite_skill(args.name, steps, lib, args.description or "", source="manual",
                                by=args.author)
    else:
        if not args.description:
            raise SystemExit("add needs --description (or --composite / --file)")
        params = []
        for p in args.param or []:
            name, _, typ = p.partition(":")
            typ, _, vals = typ.partition("=")
            params.append(Param(name, typ or "object", [v for v in vals.split("|") if v]))
        kind = "policy" if args.checkpoint else "scripted"
        skill = Skill(args.name, args.description, params, list(args.paraphrase or []),
                      Execution(kind, primitive=args.primitive or "",
                                checkpoint=args.checkpoint or "",
                                instruction=args.instruction or ""),
                      list(args.pre or []), list(args.add or []), list(args.delete or []),
                      Provenance("manual", args.author))
    if args.file is None and args.name != skill.name:
        raise SystemExit("name mismatch")
    v = store.add(skill, args.message, args.author)
    _emit(args, {"name": skill.name, "version": v}, f"added {skill.name} (v{v})")


def cmd_edit(store, args):
    from robolearn.skills.types import Skill

    cur = store.get(args.name)
    d = cur.to_dict()
    if args.file:
        d = json.loads(Path(args.file).read_text())
        d["name"] = args.name
    if args.description:
        d["description"] = args.description
    if args.paraphrase:
        d["paraphrases"] = d["paraphrases"] + [p for p in args.paraphrase
                                               if p not in d["paraphrases"]]
    for key, val in (("preconditions", args.pre), ("add_effects", args.add),
                     ("del_effects", args.delete)):
        if val is not None:
            d[key] = list(val)
    if args.checkpoint:
        d["execution"] = {**d["execution"], "kind": "policy", "checkpoint": args.checkpoint}
    if args.instruction:
        d["execution"] = {**d["execution"], "instruction": args.instruction}
    new = Skill.from_dict(d)
    if new == cur:
        _emit(args, {"name": args.name, "changed": False}, f"{args.name}: nothing changed")
        return
    v = store.edit(new, args.message, args.author, expected_version=args.expect_version)
    _emit(args, {"name": args.name, "version": v}, f"edited {args.name} (now v{v})")


def cmd_rename(store, args):
    v = store.rename(args.old, args.new, args.message, args.author)
    _emit(args, {"name": args.new, "version": v}, f"renamed {args.old} -> {args.new}")


def cmd_remove(store, args):
    store.get(args.name)
    if not _confirm(args, f"remove skill {args.name!r} (revertible with revert)"):
        raise SystemExit(1)
    v = store.remove(args.name, args.message, args.author)
    _emit(args, {"name": args.name, "version": v, "removed": True},
          f"removed {args.name} (v{v}; `robolearn-skills revert {args.name} {v - 1}` undoes)")


def duplicates(store, threshold: float, embedder_name: str = "auto") -> list[dict]:
    """Pairs of skills with near-identical language (embedding cosine >= threshold) and the
    same behaviour (same parameters and the same symbolic effects)."""
    from robolearn.planner.retrieval import get_embedder

    skills = store.skills()
    emb = get_embedder(embedder_name)
    vecs = emb.embed([s.description for s in skills])
    out = []
    for i in range(len(skills)):
        for j in range(i + 1, len(skills)):
            a, b = skills[i], skills[j]
            sim = float(vecs[i] @ vecs[j])
            same = (a.param_names == b.param_names and sorted(a.add_effects) ==
                    sorted(b.add_effects) and sorted(a.del_effects) == sorted(b.del_effects))
            if sim >= threshold and same:
                keep, drop = sorted([a, b], key=lambda s: (s.provenance.source != "seeded",
                                                           s.name))
                out.append({"keep": keep.name, "drop": drop.name, "similarity": round(sim, 3)})
    return out


def cmd_merge(store, args):
    if args.suggest or not args.keep:
        pairs = duplicates(store, args.threshold, args.embedder)
        _emit(args, pairs, _table(pairs, ["keep", "drop", "similarity"]))
        return
    if not args.drop:
        raise SystemExit("merge KEEP DROP (or merge --suggest)")
    if not _confirm(args, f"merge {args.drop!r} into {args.keep!r}"):
        raise SystemExit(1)
    v = store.merge(args.keep, args.drop, args.message, args.author)
    _emit(args, {"name": args.keep, "version": v}, f"merged {args.drop} into {args.keep} (v{v})")


def cmd_history(store, args):
    rows = [v.summary() for v in store.history(args.name)]
    _emit(args, rows, _table(rows, ["version", "op", "removed", "author", "created_at",
                                    "message"]))


def cmd_revert(store, args):
    if not _confirm(args, f"make v{args.version} of {args.name!r} current"):
        raise SystemExit(1)
    v = store.revert(args.name, args.version, args.message, args.author)
    _emit(args, {"name": args.name, "version": v}, f"{args.name}: v{args.version} is now v{v}")


def cmd_export(store, args):
    out = store.export(args.path)
    _emit(args, out, f"exported {out['skills']} skills ({out['versions']} versions) "
                     f"to {args.path}")


def cmd_import(store, args):
    out = store.import_(args.path, author=args.author or "import")
    _emit(args, out, f"imported {args.path}: {out['added']} new, {out['updated']} updated")


def cmd_seed(store, args):
    from robolearn.skills.seed import seed_store

    added = seed_store(store)
    _emit(args, added, f"seeded {len(added)} primitives: {', '.join(added) or '(all present)'}")


def cmd_salvage(store, args):
    from robolearn.skills.store import salvage

    out = salvage(args.library, args.out)
    _emit(args, out, f"salvaged {out['kept']} versions into {args.out} ({out['lost']} lost)")


def cmd_eval(store, args):
    from robolearn.skills.execute import evaluate_skill

    fixed = dict(kv.split("=", 1) for kv in args.args or [])
    res = evaluate_skill(store, args.name, args.env, args.seeds, fixed, robot=args.robot,
                         seed=args.seed, record=not args.dry_run)
    _emit(args, res, f"{args.name} in {args.env}: {res['successes']}/{res['attempts']} "
                     f"succeeded" + ("" if args.dry_run else " (statistics updated)"))


def cmd_bootstrap(store, args):
    from robolearn.skills.bootstrap import Proposer, bootstrap

    summarizer = backend = None
    if args.summarizer == "llm":
        from robolearn.skills.relabel import llm_summarizer

        summarizer = llm_summarizer({s.name: s for s in store.skills()
                                     if s.execution.kind != "composite"})
        backend = summarizer.backend
    if args.proposer == "llm" and backend is None:
        from robolearn.planner import make_backend

        backend = make_backend("embedded", threads=1)
    out = args.out or Path("runs/bootstrap") / f"{args.env}-{args.proposer}"
    rep = bootstrap(store, args.env, out, args.episodes, args.max_chain,
                    Proposer(args.proposer, backend if args.proposer == "llm" else None),
                    args.holdout_seeds, args.robot, progress=not args.json,
                    summarizer=summarizer)
    _emit(args, rep, f"{len(rep['added'])} composite skills added in {rep['episodes']} episodes "
                     f"({args.proposer}); held-out success "
                     f"{rep['heldout_success'] if rep['heldout_success'] is not None else '-'}; "
                     f"report: {out / 'report.json'}")


def cmd_relabel(store, args):
    from robolearn.skills.relabel import ATTR, relabel_store

    skills = {s.name: s for s in store.skills()}
    if not args.store:
        raise SystemExit("relabel needs a trajectory store path")
    if not args.dry_run and not _confirm(args, f"write {ATTR} into {args.store}"):
        raise SystemExit(1)
    summarizer = None
    if args.summarizer == "llm":
        from robolearn.skills.relabel import llm_summarizer

        summarizer = llm_summarizer(skills, args.base_url)
    rows = relabel_store(args.store, skills, args.max_chain, write=not args.dry_run,
                         summarizer=summarizer)
    n_llm = sum(r["source"] == "llm" for r in rows)
    _emit(args, rows, _table(rows[:50], ["episode", "start", "stop", "source", "instruction"])
          + f"\n{len(rows)} chains ({n_llm} LLM summaries, {len(rows) - n_llm} templates)"
          + ("" if args.dry_run else f" written to {ATTR}"))


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="robolearn-skills", description=__doc__.split("\n\n")[0],
                                 epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", type=Path, default=None,
                    help="skill library file (default: $ROBOLEARN_SKILLS or "
                         "~/.local/share/robolearn/skills.db)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, fn, help_, destructive=False, author=False):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable output")
        if destructive:
            p.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
        if author:
            p.add_argument("-m", "--message", default="", help="note kept in the history")
            p.add_argument("--author", default=os.environ.get("USER", ""),
                           help="who made the change (default: $USER)")
        return p

    p = verb("list", cmd_list, "list current skills with kind, source and success rate")
    p.add_argument("--source", default="", help="only skills from this source (seeded, ...)")
    p = verb("show", cmd_show, "show one skill: language, parameters, conditions, stats")
    p.add_argument("name")
    p.add_argument("--version", type=int, default=None, help="an old version")

    def skill_fields(p):
        p.add_argument("--description", default="", help="language template, e.g. "
                                                          "'pick up the {obj}'")
        p.add_argument("--paraphrase", action="append", help="another wording (repeatable)")
        p.add_argument("--pre", nargs="*", help="preconditions, e.g. 'holding({obj})'")
        p.add_argument("--add", nargs="*", help="facts the skill makes true")
        p.add_argument("--delete", nargs="*", help="facts the skill makes false")
        p.add_argument("--checkpoint", default="", help="policy checkpoint folder")
        p.add_argument("--instruction", default="", help="instruction conditioning the policy")
        p.add_argument("--file", default=None, help="the whole record as JSON")

    p = verb("add", cmd_add, "add a skill (flags, --composite chain, or --file JSON)",
             author=True)
    p.add_argument("name")
    skill_fields(p)
    p.add_argument("--param", action="append",
                   help="parameter NAME:TYPE[=v1|v2] (repeatable), e.g. obj:object")
    p.add_argument("--primitive", default="", help="scripted sim primitive it runs")
    p.add_argument("--composite", default="",
                   help="chain of library calls, e.g. 'pick(red_block); place(red_block, bowl)'")
    p = verb("edit", cmd_edit, "change a skill (a new version; the old one stays)", author=True)
    p.add_argument("name")
    skill_fields(p)
    p.add_argument("--expect-version", type=int, default=None,
                   help="fail if the current version is not this one (concurrent edits)")
    p = verb("rename", cmd_rename, "rename a skill (history kept under both names)",
             author=True)
    p.add_argument("old")
    p.add_argument("new")
    p = verb("remove", cmd_remove, "remove a skill (revertible)", destructive=True, author=True)
    p.add_argument("name")
    p = verb("merge", cmd_merge, "merge near-duplicates: DROP folds into KEEP; --suggest lists "
             "candidates by description embedding + identical effects", destructive=True,
             author=True)
    p.add_argument("keep", nargs="?")
    p.add_argument("drop", nargs="?")
    p.add_argument("--suggest", action="store_true", help="only list candidate pairs")
    p.add_argument("--threshold", type=float, default=0.85, help="min description similarity")
    p.add_argument("--embedder", default="auto", help="auto | minilm | hash")
    p = verb("history", cmd_history, "every version of a skill")
    p.add_argument("name")
    p = verb("revert", cmd_revert, "make an old version current again (as a new version)",
             destructive=True, author=True)
    p.add_argument("name")
    p.add_argument("version", type=int)
    p = verb("eval", cmd_eval, "run a skill in sim over N seeds and record its success")
    p.add_argument("name")
    p.add_argument("--env", required=True, help="sim task, e.g. Pick (robolearn/<Task>-v0)")
    p.add_argument("--seeds", type=int, default=5, help="episodes to run")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--args", nargs="*", help="fixed arguments k=v (default: the task's)")
    p.add_argument("--robot", default="", help="robot model (default: the env's)")
    p.add_argument("--dry-run", action="store_true", help="do not record statistics")
    p = verb("relabel", cmd_relabel, "SPRINT-style: describe chains of skills found in a "
             "trajectory store's skill annotations; write them back as the store attribute "
             "skill_relabels", destructive=True)
    p.add_argument("store", nargs="?", help="trajectory store path or URL")
    p.add_argument("--max-chain", type=int, default=3, help="longest chain to describe")
    p.add_argument("--summarizer", choices=["llm", "template"], default="llm",
                   help="llm: an LLM summarises each chain (kept only if it names exactly "
                        "the chain's objects, else the template); template: library templates")
    p.add_argument("--base-url", default="", help="OpenAI-compatible endpoint for the llm "
                   "summarizer (default: the embedded offline model)")
    p.add_argument("--dry-run", action="store_true", help="print, do not write")
    p = verb("bootstrap", cmd_bootstrap, "BOSS-style: chain skills in sim (LLM-guided or "
             "random), add successful chains as composite skills; resumable")
    p.add_argument("--env", required=True, help="sim task whose scene to practise in")
    p.add_argument("--episodes", type=int, default=10, help="budget in episodes")
    p.add_argument("--max-chain", type=int, default=3, help="longest chain per episode")
    p.add_argument("--proposer", choices=["llm", "random"], default="llm",
                   help="llm: the embedded model picks among feasible skills; random: baseline")
    p.add_argument("--summarizer", choices=["llm", "template"], default="llm",
                   help="how new skills are described: llm (kept only when grounded) or "
                        "template")
    p.add_argument("--holdout-seeds", type=int, default=3,
                   help="fresh seeds each new skill is evaluated on at the end")
    p.add_argument("--out", type=Path, default=None, help="run folder (resumes if present)")
    p.add_argument("--robot", default="", help="robot model (default: the env's)")
    p = verb("export", cmd_export, "write the whole library (all versions, stats) to JSON")
    p.add_argument("path")
    p = verb("import", cmd_import, "bring in an exported library (new names with history, "
             "changed ones as a new version)", author=True)
    p.add_argument("path")
    verb("seed", cmd_seed, "add the sim's primitive skills that are missing")
    p = verb("salvage", cmd_salvage, "copy every intact version of a damaged library into "
             "a new file (the damaged one is only read)")
    p.add_argument("out")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from robolearn.skills.store import LibraryError, SkillStore
    from robolearn.skills.types import SkillError

    args.library = args.library or default_library()
    args.yes = getattr(args, "yes", False)
    args.author = getattr(args, "author", "")
    args.message = getattr(args, "message", "")
    if args.verb == "salvage":
        return cmd_salvage(None, args) or 0
    fresh = not args.library.exists()
    try:
        with SkillStore(args.library) as store:
            if fresh and args.verb not in ("import", "seed"):
                try:
                    from robolearn.skills.seed import seed_store

                    added = seed_store(store)
                    print(f"new library {args.library}: seeded {len(added)} primitive skills",
                          file=sys.stderr)
                except ImportError as e:  # sim not installed: an empty library is fine
                    print(f"new library {args.library} (not seeded: {e})", file=sys.stderr)
            args.fn(store, args)
    except (LibraryError, SkillError, KeyError, ValueError) as e:
        print(f"robolearn-skills {args.verb}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
