from robolearn.planner.domain import Domain
from robolearn.planner.plan import format_plan, parse_calls
from robolearn.planner.testing import SCENE
from robolearn.skills.types import SkillCall


def test_typed_calls_use_only_scene_objects(skills):
    d = Domain.build(skills, [f for f in SCENE if "blue" not in f])
    calls = {str(c) for c in d.all_calls()}
    assert "place(red_block, bowl)" in calls and "open_drawer()" in calls
    assert not any("blue_block" in c for c in calls)
    assert "place(red_block, red_block)" not in calls


def test_feasible_follows_preconditions(skills):
    d = Domain.build(skills, SCENE)
    feas = {str(c) for c in d.feasible(d.facts)}
    assert {"pick(red_block)", "push(green_block, pad)", "open_drawer()"} <= feas
    assert not any(c.startswith(("place", "close_drawer")) for c in feas)


def test_simulate_reports_first_bad_step(skills):
    d = Domain.build(skills, SCENE)
    plan = [SkillCall.make("place", {"obj": "red_block", "target": "bowl"})]
    _, checks = d.simulate(plan)
    assert "holding(red_block)" in checks[0].error
    plan = [SkillCall.make("pick", {"obj": "red_block"}),
            SkillCall.make("place", {"obj": "red_block", "target": "bowl"})]
    end, checks = d.simulate(plan)
    assert all(not c.error for c in checks) and "in(red_block,bowl)" in end
    assert "unknown skill" in d.check(SkillCall("fly", ()), d.facts)


def test_achieve_finds_missing_pick(skills):
    d = Domain.build(skills, SCENE)
    assert [str(c) for c in d.achieve(["holding(green_block)"], d.facts)] == ["pick(green_block)"]


def test_gbnf_lists_skills_and_objects(skills):
    g = Domain.build(skills, SCENE).gbnf(max_steps=4)
    assert g.startswith("root ::=") and '"place(" place-obj ", " place-target ")"' in g
    assert 'place-target ::= "bowl" | "pad"' in g and "{0,3}" in g
    one = Domain.build(skills, SCENE).gbnf(calls=[SkillCall.make("pick", {"obj": "red_block"})])
    assert '"pick(red_block)"' in one and '"done"' in one


def test_parse_and_format_round_trip():
    text = " Pick(red_block); place( red_block , 'bowl'); done; pick(blue_block)"
    assert parse_calls(text) == [("pick", ["red_block"]), ("place", ["red_block", "bowl"])]
    steps = [SkillCall.make("pick", {"obj": "red_block"})]
    assert format_plan(steps) == "pick(red_block); done"


def test_focus_keeps_named_entities(skills):
    d = Domain.build(skills, SCENE).focus(["red_block", "bowl"])
    assert {str(c) for c in d.all_calls()} >= {"pick(red_block)", "place(red_block, bowl)"}
    assert not any("green" in str(c) or "drawer" in str(c) for c in d.all_calls())
    all_blocks = Domain.build(skills, SCENE).focus(["bowl"], quantified=True)
    assert "pick(blue_block)" in {str(c) for c in all_blocks.all_calls()}
