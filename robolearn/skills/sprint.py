"""SPRINT's training tasks (Zhang et al., "SPRINT: Scalable Policy Pre-Training via Language
Instruction Relabeling") from a store's per-step ``skill`` annotations.

:func:`sprint_tasks` turns a store into :class:`robolearn.data.dataset.SegmentTask` rows
that ``WindowDataset`` trains on (``robolearn-train ... data.sprint=true``):

1. **skills**: every annotated segment with its skill's own instruction; reward 1 on its
   last step when the skill was completed (a later segment followed it, or the episode
   succeeded);
2. **relabelled chains** (instruction relabelling): runs of 2..``max_chain`` consecutive
   segments of one trajectory with the instruction ``robolearn-skills relabel`` stored
   (grounded LLM summaries), or templates when the store has none (the skills'
   instructions joined, or the labels spelled out without a library; the same runs as
   :func:`robolearn.skills.relabel.chain_runs` gives relabelling); reward 1 at the end when
   the chain was completed;
3. **cross-trajectory chains** (skill chaining): a completed segment of skill ``z1`` paired
   with a skill ``z2`` seen anywhere in the store, under the instruction "``z1``, then
   ``z2``".  Inside the segment no reward is given, and its end state is valued under
   ``z2``'s instruction (``next_instruction``): offline RL (``iql``) then propagates the
   value of doing ``z2`` from where ``z1`` ended back into ``z1``'s steps, so chains that
   no trajectory demonstrated are learned where they are feasible (``z2``'s value is low
   where it cannot start);
4. the episodes themselves, with their own instructions and rewards (``keep_episodes``).
"""

from __future__ import annotations

import numpy as np

from robolearn import keys as K
from robolearn.data.dataset import SegmentTask
from robolearn.skills.relabel import ATTR, _call, chain_runs, segments


def skill_text(label: str, skills: dict | None) -> str:
    """The instruction of one skill label (``pick(red_block)`` -> "pick up the red block")."""
    call = _call(label, skills) if skills else None
    if call is not None:
        from robolearn.skills.compose import describe_chain

        return describe_chain([call], skills)
    name, _, args = label.partition("(")
    words = [name.replace("_", " ")] + [a.strip().replace("_", " ")
                                         for a in args.rstrip(")").split(",") if a.strip()]
    return " ".join(words)


def chain_text(labels: list[str], skills: dict | None) -> str:
    """Template instruction of a chain: the skills' instructions joined by ", then "."""
    return ", then ".join(skill_text(lab, skills) for lab in labels)


def sprint_tasks(store, skills: dict | None = None, max_chain: int = 3,
                 chains_per_segment: int = 2, keep_episodes: bool = True,
                 seed: int = 0) -> list[SegmentTask]:
    """SPRINT's tasks of an open :class:`TrajectoryStore` (see the module docstring).

    ``skills``: a skill library (name -> Skill) for the instructions' wording; without one
    the labels are spelled out.  ``chains_per_segment``: cross-trajectory partners sampled
    (seeded) per completed segment (0 = no cross-trajectory chaining).
    """
    if K.SKILL not in (store.schema.text_keys if store.schema else []):
        raise ValueError(f"{store.url} has no per-step '{K.SKILL}' annotations; SPRINT's "
                         f"tasks are built from them (collect with robolearn-collect, which "
                         f"labels every step with its skill, or use data.sprint=false)")
    labels = [str(s) for s in store.read(K.SKILL)]
    metas = store.all_episode_meta()
    tasks: list[SegmentTask] = []
    ends: list[tuple[int, int, str, bool]] = []  # completed segments: (ep, start, stop, label)
    segs_of: dict[int, list] = {}
    for ep, (a, b) in enumerate(zip(store.episode_starts, store.episode_ends)):
        segs = segments(labels[a:b])
        ok = bool(metas[ep].get(K.META_SUCCESS))
        done = [i < len(segs) - 1 or ok for i in range(len(segs))]
        segs_of[ep] = [(s, e, lab, d) for (s, e, lab), d in zip(segs, done)]
        if keep_episodes:
            tasks.append(SegmentTask(ep, 0, int(b - a)))
        for s, e, lab, d in segs_of[ep]:
            tasks.append(SegmentTask(ep, s, e, skill_text(lab, skills), reward_at_end=d,
                                     kind="skill"))
            if d:
                ends.append((ep, s, e, lab))
    # instruction relabelling: the stored (LLM) summaries, else templates (any labels, with
    # or without a library: the skills' instructions or the labels spelled out)
    stored = store.attrs.get(ATTR) or []
    for row in stored:
        done = [d for _, e, _, d in segs_of.get(int(row["episode"]), []) if e == int(row["stop"])]
        tasks.append(SegmentTask(int(row["episode"]), int(row["start"]), int(row["stop"]),
                                 str(row["instruction"]), reward_at_end=bool(done and done[0]),
                                 kind="chain"))
    for ep, segs in (segs_of.items() if not stored else ()):
        for _, run in chain_runs(segs, max_chain):
            tasks.append(SegmentTask(ep, run[0][0], run[-1][1],
                                     chain_text([r[2] for r in run], skills),
                                     reward_at_end=run[-1][3], kind="chain"))
    # cross-trajectory chaining
    vocab = sorted({lab for segs in segs_of.values() for _, _, lab, _ in segs})
    rng = np.random.default_rng(seed)
    if chains_per_segment > 0 and len(vocab) > 1:
        for ep, s, e, lab in ends:
            others = [v for v in vocab if v != lab]
            k = min(chains_per_segment, len(others))
            for nxt in rng.choice(others, k, replace=False):
                tasks.append(SegmentTask(ep, s, e, chain_text([lab, str(nxt)], skills),
                                         next_instruction=skill_text(str(nxt), skills),
                                         kind="cross_trajectory"))
    return tasks


def summarise_tasks(tasks: list[SegmentTask]) -> dict[str, int]:
    """How many tasks of each kind (for the training log)."""
    from collections import Counter

    return dict(Counter(t.kind for t in tasks))
