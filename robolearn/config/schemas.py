"""Config schemas of the library itself (data loading, the demo).

Each field carries a one-line attribute docstring (nerfstudio style); presets that set a
key not listed here fail to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SamplerConfig:
    """How training windows are cut from a trajectory store."""

    store: str = ""
    """Path or fsspec URL of the Zarr trajectory store (required: store=<path>)."""
    n_obs: int = 2
    """Observation steps per window (the current step and n_obs-1 before it)."""
    horizon: int = 16
    """Action steps per window, starting at the current step (the action chunk)."""
    batch_size: int = 64
    """Windows per batch."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the main process)."""
    memory_budget_mb: float = 4096.0
    """Decompress the whole store into RAM when it fits this budget; else use a chunk cache of this size."""
    val_ratio: float = 0.1
    """Fraction of episodes held out for validation (split by episode, never by step)."""
    seed: int = 0
    """Seed of the train/val split and the sampling order."""
    image_keys: list[str] = field(default_factory=list)
    """Cameras to load (empty = every camera in the store)."""
    images: bool = True
    """Load cameras at all (false: a state-only policy from a store that has images)."""
    future_offset: int = 0
    """Also load the observation window k steps ahead (next.*) for inverse dynamics / offline RL (0 = no)."""
    success_only: bool = False
    """Use only episodes whose metadata says success (imitation from mixed-quality stores; offline RL wants them all)."""
    instruction: str = "step"
    """What each window is told: step = the store's per-step language (the skill being done, as the collectors annotate it); episode = its episode's instruction (the whole task, e.g. for long-horizon fine-tuning)."""
    sprint: bool = False
    """Train on SPRINT's tasks from the store's per-step skill labels: every skill segment, relabelled chains (robolearn-skills relabel) and cross-trajectory chains that iql values through the next skill (robolearn.skills.sprint)."""
    sprint_chains: int = 2
    """data.sprint: cross-trajectory partners sampled per completed skill segment (0 = no chaining)."""


@dataclass
class DemoConfig:
    """The end-to-end sim demo (`robolearn-demo`): what it runs and where it writes."""

    out_dir: str = "runs/demo"
    """Run folder: the store, plots, GIFs and the report land here (recreated on each run)."""
    tasks: list[str] = field(default_factory=lambda: ["PickPlace", "OpenDrawer"])
    """Sim tasks to collect scripted-expert demonstrations of (see `robolearn-collect --list-tasks`)."""
    episodes: int = 6
    """Episodes to collect in total (round-robin over the tasks)."""
    seed: int = 0
    """Base seed; episode i uses seed + i."""
    robot: str = "panda"
    """Arm model: panda or ur5e."""
    image_size: int = 96
    """Camera resolution (square, pixels)."""
    benchmark_tasks: list[str] = field(default_factory=lambda: ["pusht"])
    """Public-benchmark tasks (env backends beside the sim) to collect expert episodes of, state only ([] skips)."""
    benchmark_episodes: int = 2
    """Episodes per benchmark task."""
    train_preset: str = "train/bc_tiny"
    """Policy preset trained briefly on the collected store ("" skips the stage)."""
    train_steps: int = 100
    """Optimiser steps of that short training run (a loss-curve preview, not a full run)."""
    train_batch_size: int = 32
    """Windows per batch of that run."""
    perception_layouts: int = 4
    """flow_vla from pixels in two stages (tiny sizes): labelled frames of this many PickPlace layouts (robolearn-collect --scene-frames) train the image encoder + scene head, then the policy stage on PickPlace demos with the scene state keeps them frozen (train/flow_vla_from_perception's options); 0 skips."""
    perception_steps: int = 60
    """Optimiser steps of each of those two tiny stages (a preview, not a full run)."""
    plan_instruction: str = "put the red block in the bowl, then close the drawer"
    """Instruction the embedded LLM planner turns into skills and executes in sim ("" skips)."""
    plan_env: str = "BowlThenCloseDrawer"
    """Sim task whose scene (and success check) the planned instruction runs in."""
    plan_task_args: list[str] = field(default_factory=lambda: ["obj=red_block"])
    """Task arguments k=v so the task's success check matches the instruction."""
