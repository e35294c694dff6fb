"""``robolearn-data``: inspect, validate, summarise, merge and split trajectory stores.

Stores are local paths or fsspec URLs (``s3://bucket/demos.zarr``); for object storage
pass options as ``--storage-option key=value`` (e.g. ``endpoint_url=http://...``,
``key=...``, ``secret=...``), or use the usual environment variables of the backend.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

EPILOG = """examples:
  robolearn-data info runs/demo/demos.zarr
  robolearn-data check runs/demo/demos.zarr          # exit 1 and name the problem if corrupt
  robolearn-data stats runs/demo/demos.zarr --save   # compute normalisation stats once
  robolearn-data plot runs/demo/demos.zarr -o summary.png
  robolearn-data merge all.zarr a.zarr b.zarr
  robolearn-data split all.zarr --train train.zarr --val val.zarr --val-ratio 0.1
  robolearn-data convert lerobot ~/datasets/pusht pusht.zarr     # LeRobotDataset v3 folder
  robolearn-data export lerobot runs/demo/demos.zarr demos_lerobot   # and back (Parquet + MP4)
  robolearn-data convert robomimic lift.hdf5 lift.zarr
  robolearn-data convert rosbag my_bag/ demos.zarr --camera front=/cam/image_raw \
      --joint-states /joint_states --action /arm/command --rate 10
"""


def _storage_options(pairs):
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise SystemExit(f"--storage-option expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k] = v
    if "endpoint_url" in out:  # s3fs wants it inside client_kwargs
        out.setdefault("client_kwargs", {})["endpoint_url"] = out.pop("endpoint_url")
    return out


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def info(store) -> dict:
    schema = store.schema
    keys = {}
    raw_total = stored_total = 0
    for k in (schema.keys if schema else []):
        spec = schema[k]
        arr = store.array(k)
        raw, stored = store.nbytes(k), store.nbytes_stored(k)
        raw_total += raw
        stored_total += stored
        keys[k] = {"dtype": spec.dtype, "shape": list(spec.shape), "chunk_steps": arr.chunks[0],
                   "raw_bytes": raw, "stored_bytes": stored}
    metas = store.all_episode_meta()
    lengths = store.episode_lengths
    return {
        "url": store.url, "format_version": store.attrs.get("format_version"),
        "episodes": store.n_episodes, "steps": store.n_steps,
        "episode_length": {"min": int(lengths.min()), "mean": float(lengths.mean()),
                           "max": int(lengths.max())} if len(lengths) else None,
        "tasks": dict(Counter(m.get("task", "?") for m in metas)),
        "success_rate": (sum(bool(m.get("success")) for m in metas) / len(metas)) if metas else None,
        "robots": sorted({m.get("robot", "?") for m in metas}),
        "fps": sorted({m.get("fps") for m in metas}),
        "keys": keys, "raw_bytes": raw_total, "stored_bytes": store.nbytes_stored(),
        "compression_ratio": (raw_total / stored_total) if stored_total else None,
    }


def _print_info(d: dict) -> None:
    print(f"store      {d['url']}  (format v{d['format_version']})")
    print(f"episodes   {d['episodes']}   steps {d['steps']}", end="")
    if d["episode_length"]:
        el = d["episode_length"]
        print(f"   length min/mean/max {el['min']}/{el['mean']:.1f}/{el['max']}")
    else:
        print()
    print("tasks      " + ", ".join(f"{t}: {n}" for t, n in d["tasks"].items()))
    if d["success_rate"] is not None:
        print(f"success    {100 * d['success_rate']:.1f}%   robots {', '.join(d['robots'])}   fps {d['fps']}")
    print(f"{'key':36s} {'dtype':8s} {'shape':14s} {'chunk':>6s} {'raw':>10s} {'stored':>10s} {'ratio':>6s}")
    for k, v in d["keys"].items():
        ratio = v["raw_bytes"] / v["stored_bytes"] if v["stored_bytes"] and v["raw_bytes"] else 0
        print(f"{k:36s} {v['dtype']:8s} {str(tuple(v['shape'])):14s} {v['chunk_steps']:6d} "
              f"{_human(v['raw_bytes']):>10s} {_human(v['stored_bytes']):>10s} "
              f"{(f'{ratio:.1f}x' if ratio else '-'):>6s}")
    if d["compression_ratio"]:
        print(f"total      raw {_human(d['raw_bytes'])}  stored {_human(d['stored_bytes'])}  "
              f"compression {d['compression_ratio']:.1f}x")


def cmd_info(a) -> int:
    from robolearn.data.store import TrajectoryStore

    d = info(TrajectoryStore.open(a.store, "r", _storage_options(a.storage_option)))
    print(json.dumps(d, indent=2)) if a.json else _print_info(d)
    return 0


def cmd_check(a) -> int:
    from robolearn.data.check import check_store

    rep = check_store(a.store, _storage_options(a.storage_option), check_chunks=not a.quick)
    if a.json:
        print(json.dumps(rep.__dict__ | {"ok": rep.ok}, indent=2))
    else:
        for w in rep.warnings:
            print(f"WARNING  {w}")
        for e in rep.errors:
            print(f"ERROR    {e}")
        status = "OK" if rep.ok else f"FAILED ({len(rep.errors)} error(s))"
        print(f"{status}: {rep.url}: {rep.n_episodes} episodes, {rep.n_steps} steps, "
              f"{rep.chunks_checked} chunks decoded")
    return 0 if rep.ok else 1


def cmd_stats(a) -> int:
    from robolearn.data.stats import get_stats
    from robolearn.data.store import TrajectoryStore

    store = TrajectoryStore.open(a.store, "a" if a.save else "r", _storage_options(a.storage_option))
    stats = get_stats(store, recompute=a.recompute, save=a.save)
    if a.json:
        print(json.dumps(stats, indent=2))
    else:
        for key, s in stats.items():
            print(key)
            for name, vals in s.items():
                print(f"  {name:5s} " + " ".join(f"{v:8.3f}" for v in vals[:12])
                      + (" ..." if len(vals) > 12 else ""))
    if a.save:
        print(f"saved to {store.url} (root attrs 'stats')", file=sys.stderr)
    return 0


def cmd_plot(a) -> int:
    from robolearn.data.plot import plot_store
    from robolearn.data.store import TrajectoryStore

    store = TrajectoryStore.open(a.store, "r", _storage_options(a.storage_option))
    out = a.output or (str(store.url).rstrip("/").removesuffix(".zarr") + "_summary.png")
    print(plot_store(store, out))
    return 0


def _check_compatible(stores) -> None:
    from robolearn.data.errors import StoreError

    first = stores[0].schema
    for s in stores[1:]:
        if s.schema is not None and first is not None and s.schema.to_json() != first.to_json():
            raise StoreError(f"{s.url} has different keys/shapes than {stores[0].url}; "
                             f"only stores with the same schema can be merged")


def cmd_merge(a) -> int:
    from robolearn.data.store import TrajectoryStore, copy_episodes

    so = _storage_options(a.storage_option)
    srcs = [TrajectoryStore.open(u, "r", so) for u in a.inputs]
    _check_compatible(srcs)
    dst = (TrajectoryStore.open(a.output, "a", so) if a.append
           else TrajectoryStore.create(a.output, storage_options=so))
    _check_compatible([dst] + srcs) if dst.schema else None
    total = sum(copy_episodes(s, dst, progress=not a.quiet) for s in srcs)
    print(f"merged {total} episodes from {len(srcs)} store(s) into {dst.url} "
          f"({dst.n_episodes} episodes)")
    return 0


def cmd_split(a) -> int:
    from robolearn.data.sampler import split_episodes
    from robolearn.data.store import TrajectoryStore, copy_episodes

    so = _storage_options(a.storage_option)
    src = TrajectoryStore.open(a.store, "r", so)
    train, val = split_episodes(src.n_episodes, a.val_ratio, a.seed)
    for url, eps in ((a.train, train), (a.val, val)):
        dst = TrajectoryStore.create(url, storage_options=so)
        copy_episodes(src, dst, eps.tolist(), progress=not a.quiet)
        print(f"{url}: {len(eps)} episodes")
    return 0


def cmd_convert(a) -> int:
    from robolearn.data.convert import get_converter

    conv = get_converter(a.format)
    so = _storage_options(a.storage_option)
    common = dict(progress=not a.quiet, storage_options=so)
    if a.format == "robomimic":
        rep = conv(a.src, a.dst, state_keys=a.state_key or None, image_size=a.image_size,
                   instruction=a.instruction, task=a.task, filter_key=a.filter_key, **common)
    elif a.format == "lerobot":
        rep = conv(a.src, a.dst, image_size=a.image_size, instruction=a.instruction, task=a.task,
                   robot=a.robot, episodes=a.episodes, **common)
    else:
        cams = dict(_pair(c, "--camera") for c in (a.camera or []))
        if not cams or not a.joint_states:
            raise ValueError("rosbag needs --camera NAME=TOPIC (one or more) and --joint-states TOPIC")
        rep = conv(a.src, a.dst, cameras=cams, joint_states=a.joint_states, action=a.action,
                   rate=a.rate, policy=a.policy, max_age=a.max_age, gap=a.gap, marker=a.marker,
                   language_topic=a.language_topic, instruction=a.instruction or "",
                   task=a.task or "", robot=a.robot or "unknown", joint_names=a.joint_names or [],
                   image_size=a.image_size, **common)
    print(rep.summary())
    return 0 if rep.check_ok else 1


def cmd_export(a) -> int:
    from robolearn.data.convert import get_exporter

    exp = get_exporter(a.format)
    rep = exp(a.store, a.dst, use_videos=a.images == "video", vcodec=a.vcodec, crf=a.crf,
              overwrite=a.overwrite, progress=not a.quiet,
              storage_options=_storage_options(a.storage_option))
    print(rep.summary())
    return 0 if rep.check_ok else 1


def _pair(s: str, flag: str) -> tuple[str, str]:
    if "=" not in s:
        raise ValueError(f"{flag} expects NAME=VALUE, got {s!r}")
    k, v = s.split("=", 1)
    return k, v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robolearn-data", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--storage-option", action="append", metavar="KEY=VALUE",
                        help="fsspec storage option for remote URLs (repeatable)")
        sp.set_defaults(fn=fn)
        return sp

    sp = add("info", cmd_info, "episodes, steps, keys, shapes, sizes and compression ratio")
    sp.add_argument("store")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = add("check", cmd_check, "validate schema, episode index, metadata and every chunk; "
             "exit 1 naming each problem")
    sp.add_argument("store")
    sp.add_argument("--quick", action="store_true", help="skip decoding every chunk")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = add("stats", cmd_stats, "per-key normalisation statistics (min/max/mean/std/quantiles)")
    sp.add_argument("store")
    sp.add_argument("--save", action="store_true", help="store them in the store's attributes")
    sp.add_argument("--recompute", action="store_true", help="ignore stats already stored")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = add("plot", cmd_plot, "PNG of episode lengths, success, action/state distributions "
             "and a frame strip per camera")
    sp.add_argument("store")
    sp.add_argument("-o", "--output", help="PNG path (default: <store>_summary.png)")
    sp = add("merge", cmd_merge, "concatenate stores with the same schema into a new store")
    sp.add_argument("output")
    sp.add_argument("inputs", nargs="+")
    sp.add_argument("--append", action="store_true", help="append to an existing output store")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = add("split", cmd_split, "split a store by episode into train and validation stores")
    sp.add_argument("store")
    sp.add_argument("--train", required=True, help="output store for training episodes")
    sp.add_argument("--val", required=True, help="output store for validation episodes")
    sp.add_argument("--val-ratio", type=float, default=0.1, help="fraction of episodes (0.1)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = add("convert", cmd_convert, "convert robomimic HDF5 or a rosbag2 (MCAP/sqlite3) into a "
             "new store, streaming; validates the result and reports what was dropped")
    sp.add_argument("format", help="converter: lerobot | robomimic | rosbag")
    sp.add_argument("src", help="input: LeRobot v3 dataset folder, robomimic .hdf5 or rosbag2 folder")
    sp.add_argument("dst", help="new store (path or URL)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--image-size", type=int, help="resize frames to a square of this size")
    sp.add_argument("--instruction", help="language instruction of every episode")
    sp.add_argument("--task", help="task name in the episode metadata")
    g = sp.add_argument_group("lerobot")
    g.add_argument("--episodes", type=int, nargs="+", help="only these episode indices")
    g = sp.add_argument_group("robomimic")
    g.add_argument("--state-key", action="append", help="obs key concatenated into "
                   "observation.state (repeatable; default eef pos/quat, gripper, object)")
    g.add_argument("--filter-key", help="only demos listed in mask/<key> (e.g. train)")
    g = sp.add_argument_group("rosbag")
    g.add_argument("--camera", action="append", metavar="NAME=TOPIC", help="image topic per camera")
    g.add_argument("--joint-states", metavar="TOPIC", help="sensor_msgs/JointState topic")
    g.add_argument("--action", metavar="TOPIC", help="command topic (default: next state)")
    g.add_argument("--rate", type=float, default=10.0, help="output rate in Hz (10)")
    g.add_argument("--policy", default="hold", choices=["hold", "nearest"],
                   help="alignment: hold = latest message <= tick (causal), nearest = closest")
    g.add_argument("--max-age", type=float, default=0.25, help="validity/tolerance in s (0.25)")
    g.add_argument("--gap", type=float, default=1.0, help="silence in s that ends an episode (1.0)")
    g.add_argument("--marker", metavar="TOPIC", help="Bool/String topic starting/stopping episodes")
    g.add_argument("--language-topic", metavar="TOPIC", help="std_msgs/String instruction topic")
    g.add_argument("--robot", help="robot name in the metadata (default: lerobot's robot_type; "
                   "rosbag: unknown)")
    g.add_argument("--joint-names", nargs="+", help="joint order (default: first JointState's)")
    sp = add("export", cmd_export, "write a store in another format (LeRobotDataset v3: Parquet "
             "+ MP4, readable by LeRobot), streaming; checks the result")
    sp.add_argument("format", help="exporter: lerobot")
    sp.add_argument("store", help="store to export (path or URL)")
    sp.add_argument("dst", help="new dataset folder")
    sp.add_argument("--images", choices=["video", "png"], default="video",
                    help="cameras as MP4 video (LeRobot's default, lossy) or PNG in Parquet (lossless)")
    sp.add_argument("--vcodec", default="libsvtav1", help="video codec (libsvtav1 = LeRobot's "
                    "default AV1; libx264)")
    sp.add_argument("--crf", type=int, default=30, help="video quality, lower is better (30)")
    sp.add_argument("--overwrite", action="store_true", help="replace a non-empty dst folder")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    from robolearn.data.errors import StoreError

    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except (StoreError, KeyError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"robolearn-data {a.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
