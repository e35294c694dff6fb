"""SPRINT-style relabelling: find chains of skills in a trajectory store's per-step
``skill`` annotations and describe each chain in language, so a language-conditioned
policy also learns the longer instructions.

A store's ``skill`` key holds one label per step (``pick(red_block)``, or a bare name).
Consecutive equal labels form a segment; every run of 2..``max_chain`` consecutive segments
in an episode becomes a chain, described by the library's language (template summary:
"pick up the red block, then put the red block on the bowl").  The results are written
back as the store attribute ``skill_relabels`` (a list of ``{episode, start, stop, skills,
instruction}``; steps ``start:stop`` of the episode's own indexing) - the episode data are
never rewritten.
"""

from __future__ import annotations

from robolearn.planner.plan import parse_calls
from robolearn.skills.compose import describe_chain
from robolearn.skills.types import SkillCall

ATTR = "skill_relabels"


def segments(labels: list[str]) -> list[tuple[int, int, str]]:
    """(start, stop, label) runs of equal consecutive labels (empty labels skipped)."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start]:
                out.append((start, i, labels[start]))
            start = i
    return out


def _call(label: str, skills: dict) -> SkillCall | None:
    parsed = parse_calls(label if "(" in label else f"{label}()")
    if not parsed or parsed[0][0] not in skills:
        return None
    name, args = parsed[0]
    names = skills[name].param_names
    if len(args) != len(names):  # a bare name for a skill with parameters: keep its words
        return SkillCall(name, tuple((n, n) for n in names)) if not args else None
    return SkillCall(name, tuple(zip(names, args)))


def relabel_store(store_url: str, skills: dict, max_chain: int = 3,
                  write: bool = True) -> list[dict]:
    """Chains with instructions for every episode of the store at ``store_url``."""
    from robolearn import keys as K
    from robolearn.data.store import TrajectoryStore

    out = []
    with TrajectoryStore.open(store_url, mode="a" if write else "r") as st:
        labels_all = [str(s) for s in st.read(K.SKILL)]
        starts = st.episode_starts
        for ep, (a, b) in enumerate(zip(starts, st.episode_ends)):
            segs = segments(labels_all[a:b])
            calls = [_call(lab, skills) for _, _, lab in segs]
            for i in range(len(segs)):
                for n in range(2, max_chain + 1):
                    chain = calls[i:i + n]
                    if len(chain) < n or any(c is None for c in chain):
                        continue
                    out.append({"episode": ep, "start": segs[i][0], "stop": segs[i + n - 1][1],
                                "skills": [segs[j][2] for j in range(i, i + n)],
                                "instruction": describe_chain(chain, skills)})
        if write:
            st.set_attr(ATTR, out)
    return out
