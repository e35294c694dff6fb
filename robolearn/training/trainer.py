"""The one training loop for every policy.

``Trainer(cfg, policy, train_data, val_data).fit()``: AdamW + warmup/cosine, gradient
clipping, EMA, autocast where the device supports it, DDP under torchrun, periodic
validation, resumable checkpoints, metrics.csv + loss.png, a tqdm bar with loss and
samples/s.  The policy is any :class:`robolearn.policies.base.Policy`: the loop only calls
``policy(batch)["loss"]``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from robolearn.training.checkpoint import (latest_checkpoint, load_training_state, rng_state,
                                           save_checkpoint)
from robolearn.training.config import TrainConfig
from robolearn.training.distributed import ResumableSampler, init_distributed
from robolearn.training.ema import EMA
from robolearn.training.metrics import MetricsLog
from robolearn.training.schedule import warmup_cosine

log = logging.getLogger(__name__)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mixed_precision`` on ``device`` (None = full precision)."""
    if mode == "no":
        return None
    if mode == "auto":
        ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if ok else None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise ValueError("mixed_precision=fp16 needs a CUDA device; use bf16 or no on CPU")
        return torch.float16
    raise ValueError(f"mixed_precision must be no, auto, bf16 or fp16, got {mode!r}")


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


def collate_batched(batch):
    """Datasets with ``__getitems__`` already return a batch dict."""
    if isinstance(batch, dict):
        return batch
    from torch.utils.data import default_collate

    return default_collate(batch)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norm scales and other 1-D parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, cfg: TrainConfig, policy, train_data, val_data=None,
                 evaluator: Callable[[Any, int], Mapping[str, float]] | None = None):
        """``evaluator(policy, step) -> {metric: value}`` runs on rank 0 every
        ``cfg.eval_every`` steps with the EMA weights loaded (the hook for sim evaluation);
        its metrics go to metrics.csv as ``eval/<name>``."""
        self.cfg = cfg
        self.evaluator = evaluator
        self.dist = init_distributed(cfg.device)
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        self.run_dir = Path(cfg.out_dir)
        self.policy = policy.to(self.device)
        self.model = policy
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DDP(policy, device_ids=ids,
                             find_unused_parameters=policy.ddp_find_unused_parameters)
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(param_groups(policy, o.weight_decay), lr=o.lr,
                                           betas=tuple(o.betas), eps=o.eps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, partial(warmup_cosine, warmup_steps=o.warmup_steps,
                                    total_steps=cfg.steps, min_ratio=o.min_lr_ratio))
        self.ema = EMA(policy, cfg.ema_decay) if cfg.use_ema else None
        self.amp_dtype = autocast_dtype(cfg.mixed_precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        # the global batch is split evenly over the ranks
        bs = cfg.data.batch_size
        if bs % self.dist.world_size:
            raise ValueError(f"data.batch_size {bs} is not divisible by {self.dist.world_size} "
                             f"processes; pick a multiple")
        self.batch_per_rank = bs // self.dist.world_size
        self.sampler = ResumableSampler(len(train_data), cfg.seed, self.dist.rank,
                                        self.dist.world_size)
        self.steps_per_epoch = len(self.sampler) // self.batch_per_rank
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(train_data)} training windows give no full batch of "
                             f"{bs}; lower data.batch_size")
        kw = dict(num_workers=cfg.data.num_workers, collate_fn=collate_batched,
                  pin_memory=self.device.type == "cuda")
        if cfg.data.num_workers > 0:
            kw.update(multiprocessing_context="spawn", persistent_workers=False)
        # own generators: creating a loader iterator must not draw from the global RNG,
        # or a resumed run (new iterator mid-epoch) would diverge from an uninterrupted one
        self.loader = DataLoader(train_data, batch_size=self.batch_per_rank, sampler=self.sampler,
                                 drop_last=True, generator=torch.Generator().manual_seed(cfg.seed),
                                 **kw)
        self.val_loader = None
        if val_data is not None and len(val_data) > 0:
            self.val_loader = DataLoader(val_data, batch_size=min(self.batch_per_rank, len(val_data)),
                                         shuffle=False,
                                         collate_fn=collate_batched,
                                         generator=torch.Generator().manual_seed(cfg.seed))
        self.step = 0
        # noise / dropout streams differ per rank (the weights were built before, identically)
        torch.manual_seed(cfg.seed + self.dist.rank)
        self.metrics = MetricsLog(self.run_dir) if self.dist.is_main else None

    # ---- one step ---------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        self.model.train()
        batch = to_device(batch, self.device)
        # 1. forward (autocast where supported) -> dict of losses
        with self._autocast():
            losses = self.model(batch)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step}; lower optim.lr "
                                     f"or check the data for NaNs (the last checkpoint is intact)")
        # 2. backward (DDP averages gradients over ranks), clip, step, schedule, EMA
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        clip = self.cfg.optim.grad_clip_norm
        gn = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip if clip > 0 else math.inf)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        hook = getattr(self.policy, "after_optimizer_step", None)
        if hook is not None:  # e.g. IQL's target critics
            hook()
        if self.ema is not None:
            self.ema.update(self.policy, self.step)
        self.step += 1
        return {k: float(v.detach()) for k, v in losses.items()} | {"grad_norm": float(gn)}

    # ---- loop -------------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> dict[str, float]:
        """Train to ``cfg.steps`` (or stop early at step ``until``, for tests of resume)."""
        cfg = self.cfg
        if cfg.resume:
            self.resume()
        end = min(cfg.steps, until) if until is not None else cfg.steps
        handler = self._start_run_folder(end) if self.dist.is_main else None
        bar = None
        if cfg.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=end, initial=self.step, desc=f"train {self.policy.name}",
                       dynamic_ncols=True)
        acc: dict[str, float] = {}
        n_acc, t0, last = 0, time.perf_counter(), {}
        deadline = time.perf_counter() + cfg.max_minutes * 60 if cfg.max_minutes > 0 else None
        try:
            while self.step < end:
                # 1. position the sampler: epoch and offset follow from the step (exact resume)
                epoch, start = divmod(self.step, self.steps_per_epoch)
                self.sampler.set_epoch(epoch, start * self.batch_per_rank)
                for batch in self.loader:
                    # 2. one optimiser step, losses accumulated until the next log row
                    for k, v in self.train_step(batch).items():
                        acc[k] = acc.get(k, 0.0) + v
                    n_acc += 1
                    if deadline is not None and self.step < end and self._time_up(deadline):
                        log.info("step %d: max_minutes=%g reached; saving and stopping "
                                 "(resume=true continues)", self.step, cfg.max_minutes)
                        end = self.step  # log, save and stop at this step
                    # 3. log row (+ validation / evaluator), progress bar
                    if self.step % cfg.log_every == 0 or self.step == end:
                        last = self._log_row(epoch, acc, n_acc, time.perf_counter() - t0)
                        acc, n_acc, t0 = {}, 0, time.perf_counter()
                        if bar is not None:
                            bar.set_postfix(loss=f"{last['loss']:.4f}",
                                            sps=f"{last['samples_per_s']:.0f}")
                    if bar is not None:
                        bar.update(1)
                    # 4. checkpoint
                    if self.step % cfg.save_every == 0 or self.step == end:
                        t_save = time.perf_counter()
                        self.save()
                        t0 += time.perf_counter() - t_save  # samples/s counts training only
                    if self.step >= end:
                        break
        finally:
            if bar is not None:
                bar.close()
            if self.metrics is not None:
                self.metrics.plot()
            if handler is not None:
                logging.getLogger("robolearn").removeHandler(handler)
                handler.close()
        return last

    def _time_up(self, deadline: float) -> bool:
        """Past the wall-clock deadline (on any rank: every rank stops at the same step)."""
        up = time.perf_counter() >= deadline
        if not self.dist.enabled:
            return up
        t = torch.tensor([float(up)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def _log_row(self, epoch: int, acc: dict[str, float], n: int, dt: float) -> dict[str, float]:
        cfg = self.cfg
        row = {"step": self.step, "epoch": epoch,
               **self._reduce_mean({k: v / n for k, v in acc.items()}),
               "lr": self.scheduler.get_last_lr()[0],
               "samples_per_s": n * cfg.data.batch_size / max(dt, 1e-9)}
        if self.val_loader is not None and cfg.val_every and self.step % cfg.val_every == 0:
            row.update(self.validate())
        if self.evaluator is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
            row.update(self.evaluate())
        if self.metrics is not None:
            self.metrics.log(row)
        return row

    def _start_run_folder(self, end: int) -> logging.Handler:
        """config.json and a train.log handler (rank 0)."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(
            {"policy_type": self.policy.name, **asdict(cfg)}, indent=2))
        handler = logging.FileHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("robolearn")
        root.addHandler(handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        log.info("training %s (%.2fM params) on %s, %d process(es), global batch %d, "
                 "autocast %s, steps %d -> %d", self.policy.name,
                 sum(p.numel() for p in self.policy.parameters()) / 1e6, self.device,
                 self.dist.world_size, cfg.data.batch_size, self.amp_dtype, self.step, end)
        return handler

    def _reduce_mean(self, row: dict[str, float]) -> dict[str, float]:
        if not self.dist.enabled:
            return row
        keys = list(row)  # same insertion order on every rank
        t = torch.tensor([row[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.dist.world_size for k, v in zip(keys, t.tolist())}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """``val_loss``: the mean loss over ``val_batches`` validation batches with the EMA
        weights, and the means of the policy's ``val_metrics`` as ``val_<name>``.

        Runs under a forked RNG with a fixed seed: the value is comparable across
        evaluations and the training RNG stream is untouched (exact resume holds).
        """
        self.policy.eval()
        sums: dict[str, float] = {}
        n = 0
        ctx = self.ema.applied(self.policy) if self.ema is not None else nullcontext()
        with torch.random.fork_rng(devices=[]), ctx:
            torch.manual_seed(self.cfg.seed)
            for i, batch in enumerate(self.val_loader):
                if i >= self.cfg.val_batches:
                    break
                batch = to_device(batch, self.device)
                with self._autocast():
                    vals = {"loss": float(self.policy(batch)["loss"]),
                            **self.policy.val_metrics(batch)}
                for k, v in vals.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n += 1
        return self._reduce_mean({f"val_{k}": v / max(n, 1) for k, v in sums.items()})

    def evaluate(self) -> dict[str, float]:
        """Run the evaluator on rank 0 with EMA weights, RNG untouched; others wait."""
        out: dict[str, float] = {}
        if self.dist.is_main:
            self.policy.eval()
            ctx = self.ema.applied(self.policy) if self.ema is not None else nullcontext()
            with torch.random.fork_rng(devices=[]), ctx:
                self.policy.reset()
                out = {f"eval/{k}": float(v) for k, v in self.evaluator(self.policy, self.step).items()}
                self.policy.reset()
        if self.dist.enabled:
            dist.barrier()
        return out

    # ---- checkpoints ------------------------------------------------------------------------
    def _gather_rng(self) -> list:
        mine = rng_state()
        if not self.dist.enabled:
            return [mine]
        out: list = [None] * self.dist.world_size
        dist.all_gather_object(out, mine)
        return out

    def save(self) -> Path | None:
        rngs = self._gather_rng()  # every rank takes part in the gather
        path = None
        if self.dist.is_main:
            path = save_checkpoint(self.run_dir, self.step, self.policy, self.optimizer,
                                   self.scheduler, self.ema, self.scaler, rngs,
                                   keep_last=self.cfg.keep_last)
            self.metrics.plot()
            log.info("step %d: checkpoint %s", self.step, path)
        if self.dist.enabled:
            dist.barrier()
        return path

    def resume(self) -> int:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            log.warning("resume: no checkpoint in %s; starting from step 0", self.run_dir)
            return 0
        check_same_policy_config(ckpt, self.policy)
        self.step = load_training_state(ckpt, self.policy, self.optimizer, self.scheduler,
                                        self.ema, self.scaler, self.dist.rank)
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)
        log.info("resumed from %s at step %d", ckpt, self.step)
        return self.step


def check_same_policy_config(ckpt: str | Path, policy) -> None:
    """Exact resume needs the policy the run was started with: refuse when the command
    line's ``policy.*`` settings differ from the checkpoint's config.json (e.g. a run started
    before ``state_scale_floor`` existed would switch its normalisation mid-run)."""
    from robolearn.policies.base import CONFIG_FILE, saved_config_dict

    f = Path(ckpt) / "policy" / CONFIG_FILE
    if not f.is_file():
        return
    cls = type(policy.config)  # fields newer than the checkpoint take their defaults
    saved = json.loads(json.dumps(cls.from_dict(saved_config_dict(
        json.loads(f.read_text())["config"])).to_dict()))
    now = json.loads(json.dumps(policy.config.to_dict()))
    for k in type(policy.config).FROM_STORE:  # unset in an older checkpoint: the store's
        if not saved.get(k):
            saved[k] = now.get(k)
    diff = {k: (saved.get(k), now.get(k)) for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)}
    if diff:
        lines = ", ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
        fix = " ".join(f"policy.{k}={json.dumps(a)}" for k, (a, _) in diff.items())
        raise ValueError(f"resume: {ckpt} was trained with other policy settings ({lines}); "
                         f"resume with the run's own settings ({fix}) or start a new out_dir")
