"""``robolearn-demo``: the end-to-end sim demo, on embedded defaults (``configs/demo.yaml``).

Stages (each capability joins as it lands):

1. collect scripted-expert demonstrations of the demo tasks in the MuJoCo sim into a
   Zarr trajectory store, with a rollout GIF per task;
2. validate the store (``robolearn-data check``), summarise it (``info``), compute and
   save normalisation statistics (``stats``) and plot it (``plot``); export it as a
   LeRobotDataset v3 and import that back (``robolearn-data export/convert lerobot``),
   checking the round trip; collect expert episodes of public benchmarks (gym-pusht's
   PushT) through the same collector, scored by the benchmark's own metric;
3. train a policy briefly on the store with the shared trainer (``robolearn-train``):
   checkpoint, metrics and loss curve in ``train/``; then ``flow_vla`` from pixels in two
   tiny stages: the keypoint scene head (image points per camera, lifted to the object
   positions) on labelled frames of a few PickPlace layouts, then the policy on it, kept
   frozen (``perception/``);
4. plan an instruction with the skill library and the embedded LLM planner and execute it
   in sim, re-planning on failure (``robolearn-plan``): report and video in ``plan/``;
5. write ``demo_report.md`` in the run folder linking everything.

Override any field of the preset as ``key=value``: ``robolearn-demo episodes=20 robot=ur5e``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from robolearn import keys as K

MARKER = ".robolearn-demo"


def _prepare_run_dir(out: Path) -> None:
    """The demo owns its run folder: recreate it, but never delete a folder it did not make."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise SystemExit(f"robolearn-demo: {out} exists and was not written by the demo; "
                             f"pass out_dir=<new folder>")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("this folder is recreated by every robolearn-demo run\n")


def stage_collect(cfg, out: Path) -> dict:
    from robolearn.cli.collect import collect
    from robolearn.envs.config import CollectConfig

    ccfg = CollectConfig(tasks=list(cfg.tasks), episodes=cfg.episodes, out=str(out / "demos.zarr"),
                         seed=cfg.seed, gif=True, gif_dir=str(out))
    ccfg.env.robot = cfg.robot
    ccfg.env.cameras.resolution = cfg.image_size
    return collect(ccfg, progress=True)


def stage_benchmarks(cfg, out: Path) -> dict:
    """Expert episodes of public benchmarks (e.g. gym-pusht's PushT) through the same
    collector and store, scored with each benchmark's own metric; GIFs beside."""
    from robolearn import keys as K
    from robolearn.cli.collect import collect
    from robolearn.data.store import TrajectoryStore
    from robolearn.envs.config import CollectConfig

    folder = out / "benchmarks"
    ccfg = CollectConfig(tasks=list(cfg.benchmark_tasks),
                         episodes=cfg.benchmark_episodes * len(cfg.benchmark_tasks),
                         out=str(folder / "demos.zarr"), seed=cfg.seed, gif=True,
                         gif_dir=str(folder))
    ccfg.env.cameras.names = []  # state only: each benchmark has its own cameras
    res = collect(ccfg, progress=False)
    metas = TrajectoryStore.open(ccfg.out).all_episode_meta()
    for task, s in res["tasks"].items():
        scores = [m["score"] for m in metas if m[K.META_TASK] == task and "score" in m]
        s["mean_score"] = sum(scores) / len(scores) if scores else None
    return res


def stage_data(store_path: Path, out: Path) -> dict:
    from robolearn.cli.data import _print_info, info
    from robolearn.data.check import check_store
    from robolearn.data.plot import plot_store
    from robolearn.data.stats import get_stats
    from robolearn.data.store import TrajectoryStore

    rep = check_store(str(store_path))
    if not rep.ok:
        raise SystemExit("robolearn-demo: the collected store failed validation:\n  "
                         + "\n  ".join(rep.errors))
    print(f"check: OK ({rep.n_episodes} episodes, {rep.chunks_checked} chunks decoded)")
    with TrajectoryStore.open(str(store_path), "a") as store:
        get_stats(store, recompute=True, save=True)
    store = TrajectoryStore.open(str(store_path))
    summary = info(store)
    _print_info(summary)
    png = plot_store(store, out / "demos_summary.png")
    return {"info": summary, "plot": png.name}


def stage_interop(store_path: Path, out: Path) -> dict:
    """Store -> LeRobot v3 (Parquet + AV1 MP4) -> store: what survived exactly, video PSNR."""
    from robolearn.data.convert import compare_stores, get_converter, get_exporter
    from robolearn.data.store import TrajectoryStore

    back = out / "lerobot_roundtrip.zarr"
    exp = get_exporter("lerobot")(str(store_path), str(out / "lerobot"), progress=False)
    imp = get_converter("lerobot")(str(out / "lerobot"), str(back), progress=False)
    cmp = compare_stores(TrajectoryStore.open(str(store_path)), TrajectoryStore.open(str(back)))
    size = sum(f.stat().st_size for f in (out / "lerobot").rglob("*") if f.is_file())
    res = {"folder": "lerobot", "export_frames_per_s": exp.frames_per_s,
           "import_frames_per_s": imp.frames_per_s, "checks_ok": exp.check_ok and imp.check_ok,
           "video_psnr_db": cmp["psnr_db_mean"], "bytes": size, **cmp}
    print(f"lerobot v3 round trip: {len(cmp['exact_keys'])}/{len(cmp['lowdim_keys'])} non-image "
          f"keys and metadata {'exact' if cmp['metadata_exact'] else 'DIFFER'}; video PSNR "
          f"{res['video_psnr_db'] or float('nan'):.1f} dB; {size / 2**20:.1f} MB in {out / 'lerobot'}")
    return res


def stage_train(cfg, store_path: Path, out: Path) -> dict:
    from robolearn.cli.train import run
    from robolearn.config import compose

    tcfg = compose(cfg.train_preset, [f"data.store={store_path}", f"steps={cfg.train_steps}",
                                      f"out_dir={out / 'train'}", "save_every=100000",
                                      f"data.batch_size={cfg.train_batch_size}"])
    last = run(tcfg)
    return {"preset": cfg.train_preset, "steps": cfg.train_steps,
            "final_loss": float(last.get("loss", float("nan"))), "plot": "train/loss.png"}


def stage_perception(cfg, out: Path) -> dict:
    """flow_vla from pixels in two stages, at tiny sizes: labelled frames of
    ``perception_layouts`` PickPlace layouts -> the keypoint scene head
    (``policy.perception_only``, ``policy.scene_head=keypoints``), then the policy on two PickPlace demos recorded with the
    scene state, starting from that stage and keeping it frozen, the cameras entering only
    through the head's estimate (the options of ``train/flow_vla_from_perception``)."""
    from robolearn.cli.collect import collect
    from robolearn.cli.train import run
    from robolearn.config import compose
    from robolearn.data.store import TrajectoryStore
    from robolearn.envs.config import CollectConfig

    folder = out / "perception"

    def store(name: str, episodes: int, seed: int, **kw) -> Path:
        path = folder / name / f"{name}.zarr"  # a folder each: the collect summaries differ
        c = CollectConfig(tasks=["PickPlace"], episodes=episodes, out=str(path), seed=seed,
                          gif=False, **kw)
        c.env.robot = cfg.robot
        c.env.cameras.resolution = cfg.image_size
        collect(c, progress=False)
        return path

    frames = store("frames", cfg.perception_layouts, cfg.seed + 500000, scene_frames=10)
    demos = store("demos", 2, cfg.seed, scene_state=True)
    state_dim = TrajectoryStore.open(str(demos)).schema[K.OBS_STATE].shape[-1]
    common = [f"steps={cfg.perception_steps}", "save_every=100000", "val_every=0",
              "eval_every=0", "progress=false", "data.val_ratio=0",
              f"policy.max_state_dim={max(8, state_dim)}", "policy.scene_aux_weight=1.0",
              "policy.scene_head=keypoints"]
    enc = run(compose("train/flow_vla_tiny", [f"data.store={frames}",
                                              f"out_dir={folder / 'encoder'}",
                                              "policy.perception_only=true", *common]))
    # the tabletop state ends with the EE pose (xyz + quaternion): its x is 7 from the end
    pol = run(compose("train/flow_vla_tiny", [
        f"data.store={demos}", f"out_dir={folder / 'policy'}",
        f"policy.init_from={folder / 'encoder'}", "policy.scene_token=true",
        "policy.freeze_vision=true", "policy.camera_tokens=false",
        "policy.scene_token_teacher=true", f"policy.scene_token_ee={state_dim - 7}", *common]))
    return {"layouts": cfg.perception_layouts, "frames": TrajectoryStore.open(
                str(frames)).n_steps, "steps": cfg.perception_steps,
            "encoder_point_loss": float(enc.get("point_loss", float("nan"))),
            "encoder_scene_loss": float(enc.get("scene_loss", float("nan"))),
            "policy_flow_loss": float(pol.get("loss", float("nan"))),
            "plots": ["perception/encoder/loss.png", "perception/policy/loss.png"]}


def stage_plan(cfg, out: Path) -> dict:
    from robolearn.cli.plan import main as plan_main

    argv = [cfg.plan_instruction, "--env", cfg.plan_env, "--seed", str(cfg.seed),
            "--robot", cfg.robot, "--library", str(out / "skills.db"), "--out", str(out / "plan"),
            "--video"]
    if cfg.plan_task_args:
        argv += ["--task-args", *cfg.plan_task_args]
    rc = plan_main(argv)
    report = json.loads((out / "plan" / "report.json").read_text())
    report["exit_code"] = rc
    return report


def write_report(out: Path, cfg, collected: dict, data: dict, seconds: float,
                 trained: dict | None = None, planned: dict | None = None,
                 interop: dict | None = None, benchmarks: dict | None = None,
                 perception: dict | None = None) -> Path:
    lines = [
        "# robolearn demo run", "",
        f"Robot `{cfg.robot}`, tasks {', '.join(f'`{t}`' for t in cfg.tasks)}, "
        f"{cfg.episodes} episodes, cameras at {cfg.image_size}px, seed {cfg.seed}; "
        f"{seconds:.0f} s in total.", "",
        "## Scripted-expert demonstrations", "",
        "| task | episodes | expert success |", "|---|---|---|",
    ]
    for task, s in collected["tasks"].items():
        lines.append(f"| {task} | {s['episodes']} | {s['successes']}/{s['episodes']} |")
    lines += ["", "| task | rollout |", "|---|---|"]
    for task, gif in collected.get("gifs", {}).items():
        lines.append(f"| {task} | ![{task}]({Path(gif).name}) |")
    inf = data["info"]
    lines += [
        "", "## Trajectory store", "",
        f"`demos.zarr`: {inf['episodes']} episodes, {inf['steps']} steps, "
        f"{inf['raw_bytes'] / 2**20:.1f} MB raw, {inf['stored_bytes'] / 2**20:.1f} MB stored "
        f"({inf['compression_ratio']:.1f}x). Normalisation statistics are saved in the store.",
        "", f"![store summary]({data['plot']})", "",
    ]
    if interop:
        lines += ["## LeRobot v3 round trip", "",
                  f"Exported to `{interop['folder']}/` (LeRobotDataset v3: Parquet + AV1 MP4, "
                  f"{interop['bytes'] / 2**20:.1f} MB) and imported back: "
                  f"{len(interop['exact_keys'])}/{len(interop['lowdim_keys'])} non-image keys "
                  f"bit-exact, episode metadata {'exact' if interop['metadata_exact'] else 'different'}"
                  + (f", video PSNR {interop['video_psnr_db']:.1f} dB"
                     if interop['video_psnr_db'] is not None else "") + ".", ""]
    if benchmarks:
        lines += ["## Public benchmarks", "",
                  "Expert episodes through the same collector and store "
                  "(`benchmarks/demos.zarr`), scored by each benchmark itself:", "",
                  "| task | expert success | benchmark score | rollout |", "|---|---|---|---|"]
        for task, s in benchmarks["tasks"].items():
            gif = benchmarks.get("gifs", {}).get(task)
            score = f"{s['mean_score']:.3f}" if s.get("mean_score") is not None else "-"
            lines.append(f"| {task} | {s['successes']}/{s['episodes']} | {score} | "
                         + (f"![{task}](benchmarks/{Path(gif).name})" if gif else "") + " |")
        lines.append("")
    if trained:
        lines += ["## Policy training (preview)", "",
                  f"`{trained['preset']}` for {trained['steps']} steps with the shared trainer: "
                  f"final loss {trained['final_loss']:.4f}. Checkpoint, `metrics.csv` and the "
                  f"curve are in `train/`.", "", f"![loss]({trained['plot']})", ""]
    if perception:
        p = perception
        lines += ["## flow_vla from pixels in two stages (preview)", "",
                  f"Perception: {p['frames']} labelled frames of {p['layouts']} PickPlace "
                  f"layouts (`perception/frames/`) train the keypoint scene head for "
                  f"{p['steps']} steps: each camera's image points of the objects (point "
                  f"loss {p['encoder_point_loss']:.4f}), lifted to their positions (scene "
                  f"loss {p['encoder_scene_loss']:.4f}). The policy then trains on PickPlace "
                  f"demos with the scene state from that run, which stays frozen (flow loss "
                  f"{p['policy_flow_loss']:.4f}). Tiny sizes; the full recipe is "
                  f"`train/flow_vla_perception` + `train/flow_vla_from_perception`, on the "
                  f"100 demos themselves.", ""]
        lines += [f"![{Path(x).parent.name} loss]({x})" for x in p["plots"]] + [""]
    if planned:
        plans = planned.get("plans") or []
        first = plans[0] if plans else {}
        lines += ["## Planning and execution in sim", "",
                  f"Instruction: *{planned.get('instruction', '')}* in `{cfg.plan_env}`.", "",
                  f"Status **{planned.get('status')}**, task success "
                  f"**{planned.get('success')}**, re-plans {planned.get('replans', 0)}. "
                  f"Details in `plan/report.md`.", ""]
        if first:
            lines += [f"First plan: `{first.get('text', first)}`", ""]
        if (out / "plan" / "video.gif").exists():
            lines += ["![plan execution](plan/video.gif)", ""]
    path = out / "demo_report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="robolearn-demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="key=value overrides of configs/demo.yaml")
    args = ap.parse_args(argv)
    from robolearn.config import ConfigError, compose

    try:
        cfg = compose("demo", args.overrides)
    except ConfigError as e:
        print(f"robolearn-demo: {e}", file=sys.stderr)
        return 2
    out = Path(cfg.out_dir)
    _prepare_run_dir(out)
    t0 = time.time()
    print(f"== 1/5 collect {cfg.episodes} expert episodes of {list(cfg.tasks)} ({cfg.robot})")
    collected = stage_collect(cfg, out)
    print(f"== 2/5 validate, summarise, plot and round-trip {out / 'demos.zarr'} through LeRobot v3")
    data = stage_data(out / "demos.zarr", out)
    interop = stage_interop(out / "demos.zarr", out)
    benchmarks = None
    if cfg.benchmark_tasks:
        print(f"== 2/5 public benchmarks: {cfg.benchmark_episodes} expert episodes of "
              f"{list(cfg.benchmark_tasks)}")
        benchmarks = stage_benchmarks(cfg, out)
    trained = None
    if cfg.train_preset:
        print(f"== 3/5 train {cfg.train_preset} for {cfg.train_steps} steps")
        trained = stage_train(cfg, out / "demos.zarr", out)
    perception = None
    if cfg.perception_layouts:
        print(f"== 3/5 flow_vla from pixels in two stages: perception on "
              f"{cfg.perception_layouts} PickPlace layouts, then the policy on it, frozen")
        perception = stage_perception(cfg, out)
    planned = None
    if cfg.plan_instruction:
        print(f"== 4/5 plan and execute: {cfg.plan_instruction!r} in {cfg.plan_env}")
        planned = stage_plan(cfg, out)
    print("== 5/5 report")
    report = write_report(out, cfg, collected, data, time.time() - t0, trained, planned, interop,
                          benchmarks, perception)
    (out / "demo_summary.json").write_text(json.dumps(
        {"collect": {k: v for k, v in collected.items() if k != "config"},
         "store": data["info"], "lerobot_roundtrip": interop, "benchmarks": benchmarks,
         "train": trained, "perception": perception,
         "plan": planned}, indent=1, default=str))
    print(f"done in {time.time() - t0:.0f} s: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
