"""Test doubles for planner code: a scripted backend and a default tabletop scene."""

from __future__ import annotations

from robolearn.planner.backends import Completion, LLMBackend

#: three blocks on the table, drawer closed, gripper empty (the sim's default layout)
SCENE = ["at(red_block,table)", "at(green_block,table)", "at(blue_block,table)",
         "gripper_empty", "drawer_closed"]


class ScriptedBackend(LLMBackend):
    """Returns queued completions; scores options by a preference list (earlier = better).
    Records every prompt and grammar it was given."""

    name = "scripted"
    supports_grammar = False

    def __init__(self, completions: list[str] | None = None,
                 prefer: list[str] | None = None):
        self.completions = list(completions or [])
        self.prefer = list(prefer or [])
        self.prompts: list[str] = []

    def complete(self, prompt, max_tokens=96, grammar=None, stop=None, temperature=0.0,
                 seed=0) -> Completion:
        self.prompts.append(prompt)
        return Completion(self.completions.pop(0) if self.completions else " done", -1.0, 1)

    def score(self, prompt, continuations, average=False) -> list[float]:
        self.prompts.append(prompt)
        rank = {t.strip(): i for i, t in enumerate(self.prefer)}
        return [-float(rank.get(c.strip(), len(self.prefer) + 1)) for c in continuations]
