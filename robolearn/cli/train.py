"""``robolearn-train``: train any registered policy on a trajectory store.

    robolearn-train train/flow_vla data.store=runs/demo/demos.zarr
    robolearn-train train/bc_tiny data.store=demos.zarr steps=500 out_dir=runs/bc
    robolearn-train train/diffusion data.store=demos.zarr resume=true   # continue a run
    torchrun --nproc_per_node 2 -m robolearn.cli.train train/bc data.store=demos.zarr

The first argument is a preset under ``configs/`` (``train/<policy>[_tiny]``); the rest
are hydra ``key=value`` overrides checked against the schema.  ``data.batch_size`` is the
global batch: under torchrun each process takes an equal share.
"""

from __future__ import annotations

import argparse
import sys


def _refuse_scene_frames(store, policy_cfg) -> None:
    """A store of labelled perception frames (robolearn-collect --scene-frames) trains
    flow_vla's perception stage only: its kept steps are no trajectory to learn actions on."""
    if getattr(policy_cfg, "perception_only", False):
        return
    if any(m.get("scene_frames", 0) for m in store.all_episode_meta()):
        raise SystemExit(f"{store.url} holds perception frames (robolearn-collect "
                         "--scene-frames), not demonstrations: its steps are no trajectory to "
                         "learn actions from. Pretrain flow_vla's encoder on it "
                         "(train/flow_vla_perception), then train the policy on demos with "
                         "policy.init_from=<that run>")


def build_datasets(cfg):
    """Train/val :class:`WindowDataset` over an episode-level split, plus the store's stats."""
    import numpy as np

    from robolearn import keys as K
    from robolearn.data.dataset import WindowDataset
    from robolearn.data.sampler import split_episodes
    from robolearn.data.stats import get_stats
    from robolearn.data.store import TrajectoryStore

    d, p = cfg.data, cfg.policy
    if (d.n_obs, d.horizon) != (p.n_obs, p.horizon):
        raise SystemExit(f"data.n_obs/horizon ({d.n_obs}/{d.horizon}) differ from policy.n_obs/"
                         f"horizon ({p.n_obs}/{p.horizon}); set only the policy's (the presets "
                         f"make data follow it)")
    store = TrajectoryStore.open(d.store, "r")
    _refuse_scene_frames(store, p)
    stats = get_stats(store, save=False)
    for k in p.FROM_STORE:  # the chunks' time base and what the actions command travel
        if not getattr(p, k):  # in the checkpoint: store.fps(), store.action_space()
            setattr(p, k, getattr(store, k)())
    train_eps, val_eps = split_episodes(store.n_episodes, d.val_ratio, d.seed)
    if d.success_only:
        ok = np.array([bool(m.get(K.META_SUCCESS)) for m in store.all_episode_meta()])
        train_eps, val_eps = train_eps[ok[train_eps]], val_eps[ok[val_eps]]
        if not len(train_eps):
            raise SystemExit(f"{d.store}: no successful episode to train on "
                             f"(data.success_only=true); collect demonstrations that succeed")
        print(f"data.success_only: {len(train_eps) + len(val_eps)} of {store.n_episodes} "
              f"episodes succeeded and are used")
    cams = p.image_keys or d.image_keys or None
    if d.instruction not in ("step", "episode"):
        raise SystemExit(f"data.instruction must be step or episode, got {d.instruction!r}")
    tasks = None
    if d.instruction == "episode":  # every window told its episode's whole instruction
        from robolearn.data.dataset import SegmentTask

        tasks = [SegmentTask(i, 0, int(n), str(m.get(K.META_INSTRUCTION, "")),
                             reward_at_end=bool(m.get(K.META_SUCCESS)))
                 for i, (n, m) in enumerate(zip(store.episode_lengths, store.all_episode_meta()))]
    if d.sprint:
        from robolearn.skills.seed import primitive_skills
        from robolearn.skills.sprint import sprint_tasks, summarise_tasks

        tasks = (tasks or []) + sprint_tasks(
            store, {s.name: s for s in primitive_skills()}, chains_per_segment=d.sprint_chains,
            keep_episodes=tasks is None, seed=d.seed)
        print(f"data.sprint: {summarise_tasks(tasks)} tasks")
    common = dict(n_obs=p.n_obs, horizon=p.horizon, image_keys=cams, images=d.images,
                  memory_budget_mb=d.memory_budget_mb,
                  future_offset=d.future_offset or getattr(p, "future_offset", 0), tasks=tasks)
    train = WindowDataset(d.store, episodes=train_eps, **common)
    val = WindowDataset(d.store, episodes=val_eps, **common) if len(val_eps) else None
    return train, val, stats


def run(cfg, evaluator=None):
    """Build datasets and the policy from a composed training config, then train.

    ``evaluator(policy, step) -> {metric: value}`` runs every ``cfg.eval_every`` steps
    (default: sim rollouts with the ``cfg.eval`` protocol, reports in ``<out_dir>/eval/``);
    see :class:`robolearn.training.trainer.Trainer`.
    """
    import torch

    from robolearn.policies.registry import get_policy_class
    from robolearn.training.trainer import Trainer

    train, val, stats = build_datasets(cfg)
    if evaluator is None and cfg.eval_every > 0:
        from robolearn.eval.run import sim_evaluator

        evaluator = sim_evaluator(cfg.eval, cfg.out_dir)
    cfg.policy.resolve_features(stats, image_keys=train.image_keys)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    policy = get_policy_class(cfg.policy.name)(cfg.policy, stats)
    missing = cfg.policy.start_requirement()
    if missing:
        raise ValueError(missing)
    if cfg.policy.init_from:
        from robolearn.policies.base import init_from_checkpoint

        n = init_from_checkpoint(policy, cfg.policy.init_from)
        print(f"policy: {n} tensors (weights and stats) from {cfg.policy.init_from}")
    if cfg.policy.encoder_init:
        from robolearn.policies.pretrain.model import load_pretrained_encoder

        n = load_pretrained_encoder(policy, cfg.policy.encoder_init, cfg.policy.freeze_encoder)
        print(f"observation encoder: {n} tensors (and its input stats) from "
              f"{cfg.policy.encoder_init}"
              f"{' (frozen)' if cfg.policy.freeze_encoder else ''}")
    trainer = Trainer(cfg, policy, train, val, evaluator=evaluator)
    last = trainer.fit()
    if trainer.dist.is_main:
        print(f"done: step {trainer.step}, loss {last.get('loss', float('nan')):.4f}, "
              f"run folder {cfg.out_dir}")
    return last


def main(argv: list[str] | None = None) -> int:
    from robolearn.config import compose_cli

    ap = argparse.ArgumentParser(prog="robolearn-train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", help="config preset, e.g. train/flow_vla or train/bc_tiny")
    ap.add_argument("overrides", nargs="*", help="hydra overrides key=value")
    args = ap.parse_args(argv)
    cfg = compose_cli("robolearn-train", args.preset, args.overrides, "train")
    if cfg is None:
        return 2
    if cfg.data.store in ("???", ""):
        print("robolearn-train: data.store is not set; pass data.store=PATH_OR_URL",
              file=sys.stderr)
        return 2
    missing = cfg.policy.start_requirement()
    if missing:
        print(f"robolearn-train: {missing}", file=sys.stderr)
        return 2
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
