"""BOSS-style bootstrapping in the sim: composites are added with provenance, the run
resumes, and the planner can use what was learned."""

import json

import pytest

from robolearn.skills import SkillStore, seed_store

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def test_bootstrap_adds_composites_and_resumes(tmp_path):
    pytest.importorskip("mujoco")
    from robolearn.planner import Planner, PlannerConfig
    from robolearn.planner.retrieval import HashEmbedder
    from robolearn.planner.testing import SCENE, ScriptedBackend
    from robolearn.skills.bootstrap import Proposer, bootstrap

    store = SkillStore(tmp_path / "lib.db")
    seed_store(store)
    out = tmp_path / "run"
    rep = bootstrap(store, "SortBlocks", out, episodes=1, max_chain=2,
                    proposer=Proposer("random"), holdout_seeds=0, progress=False)
    assert rep["episodes"] == 1 and json.loads((out / "state.json").read_text())[
        "episodes_done"] == 1
    rep = bootstrap(store, "SortBlocks", out, episodes=2, max_chain=2,
                    proposer=Proposer("random"), holdout_seeds=1, progress=False)
    assert rep["episodes"] == 2 and len(rep["library_size"]) == 2  # resumed, not restarted
    assert rep["added"], rep
    new = store.get(rep["added"][0]["name"])
    assert new.execution.kind == "composite" and new.provenance.source == "bootstrapped"
    assert len(new.execution.steps) == 2 and rep["heldout"][0]["attempts"] == 1
    # the planner can use the new skill at once (feasible in the start scene)
    be = ScriptedBackend(prefer=[new.name + "()", "done"])
    p = Planner(store, be, config=PlannerConfig(mode="feasible", embedder="hash",
                                                check_instruction=True),
                embedder=HashEmbedder())
    plan = p.plan(new.description, SCENE)
    assert plan.ok and plan.steps[0].skill == new.name
