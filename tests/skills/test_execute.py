"""Plan execution with grounded re-planning (a symbolic stand-in for the sim), and one real
run in the MuJoCo sim."""

import pytest

from robolearn.planner import Planner, PlannerConfig
from robolearn.planner.retrieval import HashEmbedder
from robolearn.planner.testing import SCENE, ScriptedBackend
from robolearn.skills import execute
from robolearn.skills.symbolic import apply, normalise
from tests.planner.conftest import tabletop_skills


class FakeEnv:
    """Just enough of TabletopEnv: symbolic facts, a task success check."""

    def __init__(self, facts, goal):
        self.facts = normalise(facts)
        self.goal = goal
        self.unwrapped = self
        self.sim = self
        self.task = self
        self.task_args = {}

    def symbolic_state(self):
        return {"facts": sorted(self.facts)}

    def success(self, sim, args):
        return self.goal <= self.facts


def fake_runner(fail_first: set[str]):
    """run_call stand-in: applies effects; the first try of each call in fail_first fails
    and leaves the held block back on the table (a slip)."""
    tried = set()

    def run(env, call, skills, on_step=None):
        s = str(call)
        if s in fail_first and s not in tried:
            tried.add(s)
            obj = call.kwargs.get("obj")
            env.facts = normalise((env.facts - {f"holding({obj})", f"at({obj},gripper)"})
                                  | {f"at({obj},table)", "gripper_empty"})
            return False
        env.facts = apply(env.facts, skills[call.skill].ground(call.kwargs))
        return True
    return run


def _planner():
    be = ScriptedBackend(prefer=["pick(red_block)", "place(red_block, bowl)", "done"])
    return Planner(tabletop_skills(), be, config=PlannerConfig(mode="feasible", embedder="hash"),
                   embedder=HashEmbedder())


def test_replanning_recovers_from_a_failed_step(monkeypatch):
    monkeypatch.setattr(execute, "run_call", fake_runner({"place(red_block, bowl)"}))
    env = FakeEnv(SCENE, {"in(red_block,bowl)"})
    out = execute.execute_plan(_planner(), env, "put the red block in the bowl", max_replans=2)
    assert out.success and out.goal_reached and out.replans == 1 and out.status == "ok"
    assert [(s.call, s.success) for s in out.steps] == [
        ("pick(red_block)", True), ("place(red_block, bowl)", False),
        ("pick(red_block)", True), ("place(red_block, bowl)", True)]


def test_without_replanning_the_failure_stands(monkeypatch):
    monkeypatch.setattr(execute, "run_call", fake_runner({"place(red_block, bowl)"}))
    env = FakeEnv(SCENE, {"in(red_block,bowl)"})
    out = execute.execute_plan(_planner(), env, "put the red block in the bowl", max_replans=0)
    assert not out.success and out.status == "failed"


def test_refusal_runs_nothing(monkeypatch):
    monkeypatch.setattr(execute, "run_call", pytest.fail)
    out = execute.execute_plan(_planner(), FakeEnv(SCENE, set()), "", max_replans=2)
    assert out.status == "refused" and out.steps == []


@pytest.mark.sim
def test_plan_cli_runs_in_sim(tmp_path, capsys):
    pytest.importorskip("mujoco")
    import json

    from robolearn.cli.plan import main

    rc = main(["put the green block in the bowl, then close the drawer", "--env",
               "BowlThenCloseDrawer", "--task-args", "obj=green_block", "--library",
               str(tmp_path / "lib.db"), "--out", str(tmp_path / "run"), "--preset",
               "planner/retrieval_only", "embedder=hash"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rc == 0 and report["success"] and report["goal_reached"]
    assert [s["call"] for s in report["steps"]] == [
        "pick(green_block)", "place(green_block, bowl)", "close_drawer()"]
    assert (tmp_path / "run" / "report.md").exists()
