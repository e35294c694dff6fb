"""A one-page PNG summary of a store: episode lengths, action/state distributions, frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robolearn import keys as K
from robolearn.data.store import TrajectoryStore


def plot_store(store: TrajectoryStore, out: str | Path, n_frames: int = 6) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schema = store.schema
    if schema is None or store.n_episodes == 0:
        raise ValueError(f"{store.url} is empty: nothing to plot")
    cams = schema.image_keys
    rows = 2 + len(cams)
    fig = plt.figure(figsize=(14, 3.2 * rows))
    gs = fig.add_gridspec(rows, max(3, n_frames))

    ax = fig.add_subplot(gs[0, 0])
    ax.hist(store.episode_lengths, bins=min(30, max(5, store.n_episodes)), color="tab:blue")
    ax.set(title=f"episode length ({store.n_episodes} episodes)", xlabel="steps", ylabel="count")

    metas = store.all_episode_meta()
    ax = fig.add_subplot(gs[0, 1])
    tasks = sorted({m.get(K.META_TASK, "?") for m in metas})
    succ = [np.mean([m.get(K.META_SUCCESS, False) for m in metas if m.get(K.META_TASK) == t])
            for t in tasks]
    ax.bar(range(len(tasks)), succ, color="tab:green")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize=7)
    ax.set(title="success rate per task", ylim=(0, 1.05))

    ax = fig.add_subplot(gs[0, 2:])
    rew = store.read(K.REWARD)
    ends = store.episode_ends
    ax.plot(np.add.reduceat(rew.astype(np.float64), store.episode_starts), ".", color="tab:orange")
    ax.set(title="return per episode", xlabel="episode", ylabel="sum of reward")
    del ends

    for col, key in ((0, K.ACTION), (1, K.OBS_STATE)):
        x = store.read(key).reshape(store.n_steps, -1)
        ax = fig.add_subplot(gs[1, col * (gs.ncols // 2):(col + 1) * (gs.ncols // 2)])
        ax.boxplot([x[:, d] for d in range(x.shape[1])], showfliers=False)
        ax.set(title=f"{key} per dimension", xlabel="dim")

    rng = np.random.default_rng(0)
    eps = rng.choice(store.n_episodes, size=min(n_frames, store.n_episodes), replace=False)
    for r, cam in enumerate(cams):
        for c, ep in enumerate(sorted(eps)):
            sl = store.episode_slice(int(ep))
            t = sl.start + (sl.stop - sl.start) // 2
            ax = fig.add_subplot(gs[2 + r, c])
            ax.imshow(store.read(cam, t, t + 1)[0])
            ax.set_axis_off()
            ax.set_title(f"{K.camera_name(cam)} ep{ep} t={t - sl.start}", fontsize=8)
    fig.suptitle(f"{store.url}: {store.n_steps} steps", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
