"""The evaluation protocol (dataclasses only: cheap to import, registered with hydra).

:class:`EvalProtocol` is everything that decides a success rate - tasks, seeds, trials,
horizon, chunk execution, language conditioning and the env - and is written verbatim into
every report, so two numbers are comparable exactly when their protocols are equal.
The trainer embeds it for periodic evaluation; :class:`EvalConfig` adds the checkpoint and
the run folder for ``robolearn-eval``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robolearn.envs.config import EnvConfig

LANGUAGE_MODES = ("plan", "instruction")


@dataclass
class EvalProtocol:
    """What is evaluated and how: recorded verbatim in the report."""

    tasks: list[str] = field(default_factory=lambda: ["PickPlace"])
    """Sim tasks (see robolearn-collect --list-tasks); each gets `trials` episodes."""
    trials: int = 50
    """Episodes per task; trial j of every task uses episode seed `seed + j`."""
    seed: int = 100000
    """Base episode seed (far from the collectors' default seeds 0.., so no layout is a training layout)."""
    max_steps: int = 0
    """Episode horizon in control steps (0 = the task's own time limit)."""
    n_action_steps: int = 0
    """Actions executed per predicted chunk (0 = the policy's own setting)."""
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    """Inference-time policy settings for this evaluation only, on the command line +policy_overrides.noise_scale=0.5 (hydra's + adds a key; flow_vla: noise_scale, num_steps, use_kv_cache; diffusion: num_inference_steps); restored afterwards. Keys that change what was trained are refused."""
    num_envs: int = 2
    """Parallel sim workers (gymnasium AsyncVectorEnv); policy inference is batched across them."""
    language: str = "plan"
    """plan: condition on each plan step's skill instruction (as the demos are annotated), moving to the next step when its success check holds; instruction: the task's instruction throughout."""
    videos: int = 2
    """Rollout GIFs written per task (the first trials)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Env settings; cameras follow the policy's image keys unless set here."""

    def validate(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        if self.language not in LANGUAGE_MODES:
            raise ValueError(f"language must be one of {LANGUAGE_MODES}, got {self.language!r}")
        if not self.tasks:
            raise ValueError("tasks is empty; name at least one task, e.g. tasks=[PickPlace]")


@dataclass
class EvalConfig(EvalProtocol):
    """`robolearn-eval`: roll a checkpoint out in the sim and write a report."""

    checkpoint: str = ""
    """Policy folder (a trainer checkpoint's `policy/` or any save_pretrained folder)."""
    out_dir: str = "runs/eval"
    """Report folder: report.json, report.md, success.png and videos/ land here."""
    device: str = "cpu"
    """Device of the policy (cpu, cuda, cuda:N)."""
    progress: bool = True
    """Show a progress bar over episodes."""
