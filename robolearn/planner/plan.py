"""Plans: what the planner returns, and the one text format plans are written in.

The text format is what prompts show and what constrained decoding produces::

    pick(red_block); place(red_block, bowl); close_drawer(); done
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from robolearn.skills.types import SkillCall

CALL_RE = re.compile(r"([A-Za-z_][\w]*)\s*\(([^()]*)\)")
STATUSES = ("ok", "refused", "missing_skill", "invalid")


@dataclass
class Plan:
    """A plan of skill invocations, or why there is none.

    ``status``: ``ok`` (validated against the library and the scene), ``refused``
    (empty / ambiguous / impossible instruction; ``reason`` says why), ``missing_skill``
    (HALP: no skill achieves a step; ``missing`` describes the skill wanted), ``invalid``
    (the backend's output could not be validated or repaired; ``reason`` lists errors).
    """

    steps: list[SkillCall] = field(default_factory=list)
    status: str = "ok"
    reason: str = ""
    missing: str = ""
    raw: str = ""  # the backend's text, for debugging
    repairs: list[str] = field(default_factory=list)  # what validation changed, never silent
    score: float | None = None  # model log-probability of the plan, where known
    latency_s: float = 0.0
    backend: str = ""
    mode: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def text(self) -> str:
        return format_plan(self.steps)

    def to_dict(self) -> dict:
        return {"status": self.status, "steps": [s.to_dict() for s in self.steps],
                "text": self.text(), "reason": self.reason, "missing": self.missing,
                "repairs": list(self.repairs), "score": self.score,
                "latency_s": round(self.latency_s, 3), "backend": self.backend,
                "mode": self.mode, "raw": self.raw}


def format_plan(steps: list[SkillCall], done: bool = True) -> str:
    return "; ".join([str(s) for s in steps] + (["done"] if done else []))


def parse_calls(text: str) -> list[tuple[str, list[str]]]:
    """Every ``name(arg, ...)`` in ``text`` up to ``done`` (tolerant of prose around it)."""
    text = text.split("\n\n")[0]
    cut = re.search(r"\bdone\b", text)
    if cut:
        text = text[:cut.start()]
    return [(m.group(1).lower(), [a.strip().strip("'\"").lower().replace(" ", "_")
                                  for a in m.group(2).split(",") if a.strip()])
            for m in CALL_RE.finditer(text)]
