"""torch ``Dataset`` of training windows and the DataLoader around it.

Each sample (or batch, via ``__getitems__``) is a dict:

* ``observation.images.<cam>``: uint8 (n_obs, 3, H, W) - channels first, unnormalised
* ``observation.state``: float32 (n_obs, D); ``observation.state_is_pad``: bool (n_obs,)
* ``observation.environment_state``: float32 (n_obs, E), when the store records the
  scene's privileged state (``robolearn-collect --scene-state``): a training target only
* ``observation.keypoints.<cam>``: float32 (n_obs, P, 3), for each camera read, when the
  store records where it images the scene's objects (also ``--scene-state``): a target too
* ``action``: float32 (horizon, A); ``action_is_pad``: bool (horizon,)
* ``reward``: float32 (horizon,), ``done``: bool (horizon,) - aligned with the actions
* ``language``, ``skill``: str at the anchor step; ``task``: str from the episode metadata
* ``episode_index``, ``index``: int64 (episode id, global anchor step)
* with ``future_offset = k > 0`` also ``next.observation.state`` (n_obs, D),
  ``next.observation.state_is_pad``, ``next.observation.images.<cam>``: the observation
  window ending at ``t + k`` (clipped to the episode's last step), and ``next.done``: bool,
  True when the episode ended before ``t + k`` (inverse dynamics, offline RL targets),
  and ``next.steps``: int64, the steps from ``t`` to that observation (``k`` or fewer)
* with segment ``tasks`` (:class:`SegmentTask`, SPRINT relabelling): ``language`` and
  ``reward`` are the task's, and ``next.language`` is the instruction the future
  observation is valued under (the next skill's, for a cross-trajectory chain)

Batches add a leading ``B`` dimension (strings become lists).  The dataset pickles into
DataLoader workers by URL and reopens the store lazily in each worker process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from robolearn import keys as K
from robolearn.data.sampler import WindowIndex, block_shuffle_order, split_episodes
from robolearn.data.source import FrameSource, open_source, process_id
from robolearn.data.store import TrajectoryStore


@dataclass(frozen=True)
class SegmentTask:
    """A training task on steps ``start:stop`` of one episode (SPRINT-style relabelling).

    ``instruction`` replaces the store's language for windows anchored there (None = keep
    it, and keep the store's rewards); ``reward_at_end``: the sparse reward 1 sits on the
    segment's last step (the task was done there), else every reward is 0;
    ``next_instruction``: cross-trajectory chaining - where a window's future observation
    is the segment's end state, offline RL bootstraps from the value of *this*
    instruction there (the next skill's), instead of ending the task.
    """

    episode: int
    start: int
    stop: int
    instruction: str | None = None
    reward_at_end: bool = False
    next_instruction: str | None = None
    kind: str = "episode"
    """What the task is (episode, skill, chain, cross_trajectory), for logs."""


class WindowDataset:
    """Windows of ``n_obs`` observations and ``horizon`` actions from a trajectory store.

    ``tasks`` (optional :class:`SegmentTask` list): anchor windows on those segments, with
    their instructions and rewards, instead of on whole episodes.  ``image_keys`` empty or
    None loads every camera; ``images=False`` none (a state-only policy).
    """

    def __init__(self, store: str | TrajectoryStore, n_obs: int = 2, horizon: int = 16,
                 episodes: Sequence[int] | None = None, image_keys: Sequence[str] | None = None,
                 memory_budget_mb: float = 4096.0, storage_options: Mapping | None = None,
                 future_offset: int = 0, tasks: Sequence[SegmentTask] | None = None,
                 images: bool = True):
        st = TrajectoryStore.open(store, "r", storage_options) if isinstance(store, str) else store
        self.url = st.url
        self.storage_options = dict(storage_options or st.storage_options)
        schema = st.schema
        if schema is None:
            raise ValueError(f"{st.url} has no episodes; collect or convert some first")
        cams = schema.image_keys if image_keys is None or len(image_keys) == 0 else list(image_keys)
        cams = cams if images else []
        bad = [k for k in cams if k not in schema.image_keys]
        if bad:
            raise KeyError(f"cameras {bad} not in {st.url}; it has {schema.image_keys}")
        self.image_keys = cams
        self.keys = cams + [k for k in schema.lowdim_keys + schema.text_keys]
        self.n_obs, self.horizon = n_obs, horizon
        if future_offset < 0:
            raise ValueError(f"future_offset must be >= 0, got {future_offset}")
        self.future_offset = int(future_offset)
        self.memory_budget_bytes = memory_budget_mb * 2**20
        self.tasks_list = list(tasks) if tasks is not None else None
        segments = None
        if self.tasks_list is not None:
            if episodes is not None:  # keep the tasks of the selected episodes
                keep = set(np.asarray(episodes).tolist())
                self.tasks_list = [t for t in self.tasks_list if t.episode in keep]
            segments = np.array([(t.episode, t.start, t.stop) for t in self.tasks_list],
                                dtype=np.int64).reshape(-1, 3)
            # per segment, so a batch indexes arrays instead of looping over tasks
            tl = self.tasks_list
            self._seg_text = np.array([t.instruction for t in tl], dtype=object)
            self._seg_next = np.array([t.next_instruction for t in tl], dtype=object)
            self._seg_reward = np.array([t.reward_at_end for t in tl], dtype=bool)
        self.index = WindowIndex(st.episode_ends, n_obs, horizon, episodes, segments)
        self.tasks = np.array([m.get(K.META_TASK, "") for m in st.all_episode_meta()], dtype=object)
        self.image_chunk_steps = st.chunk_steps(cams[0]) if cams else 1
        self._source: FrameSource | None = None
        self._pid = None
        self._opened_in = process_id()  # the process that built the dataset
        self._image_bytes = sum(st.nbytes(k) for k in cams)
        self.cache_share = 1
        if isinstance(store, TrajectoryStore):
            self._source = FrameSource(st, self.keys, self.memory_budget_bytes, channels_first=True)
            self._pid = process_id()

    # the open store holds file handles and caches: workers reopen it by URL
    def __getstate__(self):
        d = dict(self.__dict__)
        d["_source"], d["_pid"] = None, None
        return d

    @property
    def source(self) -> FrameSource:
        if self._source is None or self._pid != process_id():
            in_worker = process_id() != self._opened_in
            budget = self._source_budget_in_worker() if in_worker else self.memory_budget_bytes
            self._source = open_source(self.url, self.storage_options, self.keys, budget,
                                       channels_first=True)
            self._pid = process_id()
        return self._source

    def _source_budget_in_worker(self) -> float:
        """Chunk-cache budget inside a worker; stores that fit in RAM keep the full budget."""
        full = self.memory_budget_bytes
        images = self._image_bytes
        return full if images <= full else full / max(1, self.cache_share)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        batch = self.__getitems__([int(i)])
        return {k: (v[0] if not isinstance(v, list) else v[0]) for k, v in batch.items()}

    def __getitems__(self, ids: Sequence[int]) -> dict[str, Any]:
        import torch

        w = self.index.windows(np.asarray(ids))
        src = self.source
        out: dict[str, Any] = {}
        for k in self.image_keys:
            out[k] = torch.from_numpy(src.gather(k, w.obs))  # (B, n_obs, 3, H, W)
        out[K.OBS_STATE] = torch.from_numpy(src.gather(K.OBS_STATE, w.obs).astype(np.float32))
        out[K.pad_key(K.OBS_STATE)] = torch.from_numpy(w.obs_pad)
        # training targets only (auxiliary losses): the scene state and, for the cameras
        # read, where each camera images the objects
        for k in (K.OBS_ENV_STATE, *(K.keypoints_key(K.camera_name(c)) for c in self.image_keys)):
            if k in src.keys:
                out[k] = torch.from_numpy(src.gather(k, w.obs).astype(np.float32))
        out[K.ACTION] = torch.from_numpy(src.gather(K.ACTION, w.act).astype(np.float32))
        out[K.pad_key(K.ACTION)] = torch.from_numpy(w.act_pad)
        out[K.REWARD] = torch.from_numpy(src.gather(K.REWARD, w.act).astype(np.float32))
        out[K.DONE] = torch.from_numpy(src.gather(K.DONE, w.act).astype(bool))
        for k in (K.LANGUAGE, K.SKILL):
            if k in src.keys:
                out[k] = src.gather(k, w.anchor).tolist()
        if self.future_offset:
            f_obs, f_pad, beyond = self.index.future(np.asarray(ids), self.future_offset)
            for k in self.image_keys:
                out[K.next_key(k)] = torch.from_numpy(src.gather(k, f_obs))
            out[K.next_key(K.OBS_STATE)] = torch.from_numpy(
                src.gather(K.OBS_STATE, f_obs).astype(np.float32))
            out[K.pad_key(K.next_key(K.OBS_STATE))] = torch.from_numpy(f_pad)
            out[K.NEXT_DONE] = torch.from_numpy(beyond)
            out[K.NEXT_STEPS] = torch.from_numpy(
                self.index.future_steps(np.asarray(ids), self.future_offset))
        if self.tasks_list is not None:
            self._apply_tasks(out, np.asarray(ids), w)
        out["task"] = [str(t) for t in self.tasks[w.episode]]
        out["episode_index"] = torch.from_numpy(w.episode)
        out["index"] = torch.from_numpy(w.anchor)
        return out


    def _apply_tasks(self, out: dict, ids: np.ndarray, w) -> None:
        """Instructions, rewards and bootstrap instructions of the segment tasks."""
        import torch

        seg = self.index.anchor_segment[ids]
        text, nxt = self._seg_text[seg], self._seg_next[seg]
        mine = np.array([t is not None for t in text], dtype=bool)
        chained = np.array([t is not None for t in nxt], dtype=bool)
        lang = np.array(out.get(K.LANGUAGE, [""] * len(ids)), dtype=object)
        lang[mine] = text[mine]
        out[K.LANGUAGE] = lang.tolist()
        at_end = ((w.act == self.index.seg_last[seg][:, None]) & ~w.act_pad
                  & self._seg_reward[seg][:, None])
        reward = out[K.REWARD].numpy().copy()
        reward[mine] = at_end[mine]
        out[K.REWARD] = torch.from_numpy(reward)
        if self.future_offset:
            beyond = out[K.NEXT_DONE].numpy()
            # a chained segment's end is valued under the next skill, not ended there
            swap = chained & beyond
            next_lang = lang.copy()
            next_lang[swap] = nxt[swap]
            out[K.next_key(K.LANGUAGE)] = next_lang.tolist()
            out[K.NEXT_DONE] = torch.from_numpy(beyond & ~chained)


def collate_windows(batch):
    """``__getitems__`` already returns a batched dict; single samples get stacked."""
    if isinstance(batch, dict):
        return batch
    from torch.utils.data import default_collate

    return default_collate(batch)


class BlockShuffleSampler:
    """Sampler for stores that do not fit in RAM: see ``block_shuffle_order``.

    With DataLoader workers, batch ``i`` goes to worker ``i % num_workers``; the order is
    built so that each worker's batches come from its own disjoint set of chunks (chunk
    ``c`` belongs to worker ``c % num_workers``), so no chunk is decompressed twice and
    each worker's cache (``memory_budget / num_workers``) holds only its own chunks.
    """

    def __init__(self, dataset: WindowDataset, blocks_in_flight: int | None = None, seed: int = 0,
                 num_workers: int = 0, batch_size: int = 1):
        self.dataset = dataset
        self.n_streams, self.batch_size = max(1, num_workers), batch_size
        if blocks_in_flight is None:
            # as many chunks (all cameras) as half of one worker's cache holds
            src = dataset.source
            frame_bytes = sum(src.store.nbytes(k) for k in dataset.image_keys) / max(1, src.n_steps)
            per_block = max(1.0, frame_bytes * dataset.image_chunk_steps)
            budget = dataset.memory_budget_bytes / self.n_streams
            blocks_in_flight = max(1, int(0.5 * budget // per_block))
        self.blocks_in_flight = blocks_in_flight
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        anchors, cs = self.dataset.index.anchors, self.dataset.image_chunk_steps
        owner = (anchors // cs) % self.n_streams
        streams = []
        for w in range(self.n_streams):
            ids = np.flatnonzero(owner == w)
            streams.append(ids[block_shuffle_order(anchors[ids], cs, self.blocks_in_flight, rng)])
        if self.n_streams == 1:
            return iter(streams[0].tolist())
        bs = self.batch_size  # interleave batch by batch: batch i -> worker i % n
        batches = [[s[i:i + bs] for i in range(0, len(s), bs)] for s in streams]
        out = [b[i] for i in range(max(map(len, batches))) for b in batches if i < len(b)]
        return iter(np.concatenate(out).tolist() if out else [])


def make_dataloader(dataset: WindowDataset, batch_size: int = 64, shuffle: bool = True,
                    num_workers: int = 0, seed: int = 0, drop_last: bool = False, **kwargs):
    """A DataLoader that batches through ``__getitems__`` (one vectorised gather per batch).

    Shuffling uses a plain random permutation when the store is in RAM and a
    chunk-local block shuffle when it is served from the chunk cache.
    """
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    sampler = None
    if shuffle:
        if dataset.source.in_memory:
            g = torch.Generator().manual_seed(seed)
            sampler = RandomSampler(dataset, generator=g)
        else:
            sampler = BlockShuffleSampler(dataset, seed=seed, num_workers=num_workers,
                                          batch_size=batch_size)
            dataset.cache_share = max(1, num_workers)
    ctx = kwargs.pop("multiprocessing_context", "spawn" if num_workers > 0 else None)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      num_workers=num_workers, collate_fn=collate_windows, drop_last=drop_last,
                      multiprocessing_context=ctx,
                      persistent_workers=num_workers > 0, **kwargs)


def make_dataloaders(cfg, **kwargs):
    """Train and validation loaders from a :class:`robolearn.config.schemas.SamplerConfig`."""
    if not cfg.store:
        raise ValueError("no store given: set store=<path or URL of a trajectory store>")
    store = TrajectoryStore.open(cfg.store, "r")
    train_eps, val_eps = split_episodes(store.n_episodes, cfg.val_ratio, cfg.seed)
    common = dict(n_obs=cfg.n_obs, horizon=cfg.horizon, image_keys=cfg.image_keys or None,
                  memory_budget_mb=cfg.memory_budget_mb, future_offset=cfg.future_offset)
    train = WindowDataset(cfg.store, episodes=train_eps, **common)
    loaders = {"train": make_dataloader(train, cfg.batch_size, True, cfg.num_workers, cfg.seed,
                                        drop_last=True, **kwargs)}
    if len(val_eps):
        val = WindowDataset(cfg.store, episodes=val_eps, **common)
        loaders["val"] = make_dataloader(val, cfg.batch_size, False, 0, cfg.seed, **kwargs)
    return loaders
