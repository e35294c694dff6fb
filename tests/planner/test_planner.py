"""The planning pipeline with a scripted backend: validation, repair, constraints,
retrieval, refusals, missing-skill requests and grounded re-planning."""

import pytest

from robolearn.planner import Planner, PlannerConfig
from robolearn.planner.retrieval import Example, HashEmbedder
from robolearn.planner.testing import SCENE, ScriptedBackend
from robolearn.skills.types import SkillCall


def planner(skills, backend=None, **cfg):
    cfg.setdefault("embedder", "hash")
    return Planner(skills, backend, config=PlannerConfig(**cfg), embedder=HashEmbedder())


def test_free_plan_is_parsed_and_validated(skills):
    be = ScriptedBackend([" pick(red_block); place(red_block, bowl); done"])
    plan = planner(skills, be, mode="free").plan("put the red block in the bowl", SCENE)
    assert plan.ok and plan.text() == "pick(red_block); place(red_block, bowl); done"
    assert "Task: put the red block in the bowl\nPlan:" in be.prompts[0]


def test_hallucinated_skill_is_never_accepted(skills):
    be = ScriptedBackend([" teleport(red_block, bowl); done"])
    plan = planner(skills, be, mode="free").plan("put the red block in the bowl", SCENE)
    assert plan.status == "invalid" and "unknown skill 'teleport'" in plan.reason
    assert plan.steps == []


def test_missing_enabling_step_is_repaired_and_reported(skills):
    be = ScriptedBackend([" place(red_block, bowl); done"])
    plan = planner(skills, be, mode="free").plan("put the red block in the bowl", SCENE)
    assert plan.ok and plan.text() == "pick(red_block); place(red_block, bowl); done"
    assert plan.repairs == ["inserted pick(red_block) before place(red_block, bowl)"]
    be = ScriptedBackend([" place(red_block, bowl); done"])
    plan = planner(skills, be, mode="free", repair=False).plan("put the red block in the bowl",
                                                               SCENE)
    assert plan.status == "invalid" and "holding(red_block)" in plan.reason


def test_feasible_mode_only_offers_executable_steps(skills):
    # the backend prefers an infeasible place first: it is never offered
    be = ScriptedBackend(prefer=["place(red_block, bowl)", "pick(red_block)", "done"])
    plan = planner(skills, be, mode="feasible").plan("put the red block in the bowl", SCENE)
    assert plan.text() == "pick(red_block); place(red_block, bowl); done"


def test_protect_stops_undoing_achieved_steps(skills):
    # a model that loves picking would pick the block back out of the bowl
    prefer = ["pick(red_block)", "place(red_block, bowl)", "done"]
    p = planner(skills, ScriptedBackend(prefer=prefer), mode="feasible")
    assert p.plan("put the red block in the bowl", SCENE).text() == \
        "pick(red_block); place(red_block, bowl); done"


def test_beam_keeps_best_scored_plan(skills):
    be = ScriptedBackend(prefer=["push(green_block, pad)", "done"])
    plan = planner(skills, be, mode="beam", beam_width=2).plan(
        "slide the green block onto the target pad", SCENE)
    assert plan.ok and plan.text() == "push(green_block, pad); done"


def test_retrieval_puts_nearest_example_last(skills):
    be = ScriptedBackend([" open_drawer(); done"])
    p = planner(skills, be, mode="free", n_examples=2)
    p.plan("pull the drawer open", SCENE)
    prompt = be.prompts[0]
    assert prompt.rfind("Task: pull the drawer open\nPlan: open_drawer()") > \
        prompt.find("Task: open the drawer")
    assert prompt.count("Task:") == 3


def test_nearest_mode_swaps_objects(skills):
    p = planner(skills, mode="nearest")
    assert p.plan("put the blue block on the target pad", SCENE).text() == \
        "pick(blue_block); place(blue_block, pad); done"


@pytest.mark.parametrize("instruction, status, words", [
    ("", "refused", "empty"),
    ("   ", "refused", "empty"),
    ("put the block in the bowl", "refused", "ambiguous"),
    ("pick up the purple block", "refused", "no purple block"),
    ("put the mug on the target pad", "refused", "no mug"),
    ("stack the red block on the green block", "missing_skill", "target"),
    ("dance", "missing_skill", "dance"),
])
def test_bad_instructions_get_refusals_not_plans(skills, instruction, status, words):
    be = ScriptedBackend([" pick(red_block); done"])
    plan = planner(skills, be, mode="free").plan(instruction, SCENE)
    assert plan.status == status and words in plan.reason + plan.missing
    assert plan.steps == [] and be.prompts == []  # refused before any model ran


def test_plan_that_ignores_named_object_is_caught(skills):
    be = ScriptedBackend([" pick(red_block); place(red_block, pad); done"])
    plan = planner(skills, be, mode="free").plan(
        "put the red block on the target pad and the green block in the bowl", SCENE)
    assert plan.status == "invalid" and "leaves out green_block" in plan.reason
    # nothing in the library touches the drawer: that is a missing skill (HALP)
    no_drawer = [s for s in skills if "drawer" not in s.name]
    be = ScriptedBackend([" pick(red_block); place(red_block, bowl); done"])
    plan = planner(no_drawer, be, mode="free").plan(
        "put the red block in the bowl, then close the drawer", SCENE)
    assert plan.status == "missing_skill" and "drawer" in plan.missing


def test_replan_continues_from_observed_state(skills):
    # place failed and the block fell back on the table: re-planning must pick again
    be = ScriptedBackend(prefer=["place(red_block, bowl)", "pick(red_block)", "done"])
    p = planner(skills, be, mode="feasible")
    done = [SkillCall.make("pick", {"obj": "red_block"})]
    failed = SkillCall.make("place", {"obj": "red_block", "target": "bowl"})
    plan = p.replan("put the red block in the bowl", SCENE, done=done, failed=failed)
    assert plan.text() == "pick(red_block); place(red_block, bowl); done"
    assert plan.repairs[0].startswith("re-planned after place(red_block, bowl)")
    assert be.prompts[0].endswith("Plan: pick(red_block);")


def test_new_skills_and_examples_are_used_at_once(skills, tmp_path):
    from robolearn.skills import Execution, Provenance, Skill, SkillStore

    store = SkillStore(tmp_path / "lib.db")
    for s in skills:
        store.add(s)
    p = planner(store, ScriptedBackend([" bin_red(); done"]), mode="free")
    assert p.plan("put the red block in the bowl", SCENE).status == "invalid"
    store.add(Skill("bin_red", "put the red block in the bowl",
                    execution=Execution("composite", steps=[
                        {"skill": "pick", "args": {"obj": "red_block"}},
                        {"skill": "place", "args": {"obj": "red_block", "target": "bowl"}}]),
                    preconditions=["gripper_empty"], add_effects=["at(red_block,bowl)"],
                    provenance=Provenance("bootstrapped", "test")))
    p.add_example("bin the red block", "bin_red(); done")
    p.backend.completions = [" bin_red(); done"]
    plan = p.plan("put the red block in the bowl", SCENE)
    assert plan.ok and plan.text() == "bin_red(); done"
    assert "bin_red(): put the red block in the bowl" in p.backend.prompts[-1]


def test_unknown_mode_and_missing_backend_are_clear_errors(skills):
    with pytest.raises(ValueError, match="unknown planner mode"):
        planner(skills, ScriptedBackend(), mode="magic")
    with pytest.raises(ValueError, match="needs an LLM backend"):
        planner(skills, None, mode="feasible")


def test_alternatives_are_distinct_valid_plans(skills):
    be = ScriptedBackend(prefer=["pick(red_block)", "place(red_block, bowl)", "push(red_block, pad)",
                                 "place(red_block, pad)", "done"])
    p = planner(skills, be, mode="feasible")
    alts = p.alternatives("put the red block on the target pad", SCENE, n=3, temperature=5.0)
    texts = [a.text() for a in alts]
    assert len(texts) == len(set(texts)) >= 2
    assert all(a.ok for a in alts)
    assert "pick(red_block); place(red_block, pad); done" in texts
