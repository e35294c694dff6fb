import pytest

from robolearn.skills import Skill, SkillCall, SkillError
from robolearn.skills.symbolic import apply, holds, normalise, unmet

from .conftest import make_skill


def test_round_trip_through_dict():
    s = make_skill(paraphrases=["grab the {obj}"])
    assert Skill.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("kw, match", [
    ({"name": "Bad Name"}, "bad skill name"),
    ({"description": " "}, "needs a description"),
    ({"preconditions": ["holding({thing})"]}, "not a parameter"),
])
def test_malformed_records_are_refused(kw, match):
    with pytest.raises(SkillError, match=match):
        make_skill(**kw).check()


def test_unknown_field_is_refused():
    with pytest.raises(SkillError, match="unknown fields"):
        Skill.from_dict({**make_skill().to_dict(), "colour": "red"})


def test_check_args_names_bad_value():
    s = make_skill()
    s.check_args({"obj": "red_block"})
    with pytest.raises(SkillError, match="purple_block"):
        s.check_args({"obj": "purple_block"})
    with pytest.raises(SkillError, match="takes"):
        s.check_args({})


def test_ground_and_words():
    s = make_skill()
    assert s.ground({"obj": "red_block"})["add"] == ["holding(red_block)"]
    assert s.instruction({"obj": "red_block"}) == "pick up the red block"
    assert str(SkillCall.make("place", {"obj": "red_block", "target": "bowl"})) == \
        "place(red_block, bowl)"


def test_symbolic_pick_then_place_moves_the_cube():
    facts = normalise({"at(red_block,table)", "gripper_empty", "drawer_closed"})
    pick = {"pre": ["gripper_empty", "reachable(red_block)"], "add": ["holding(red_block)"],
            "del": ["gripper_empty", "at(red_block,table)"]}
    assert unmet(facts, pick) == []
    facts = apply(facts, pick)
    assert holds("holding(red_block)", facts) and "at(red_block,table)" not in facts
    place = {"pre": ["holding(red_block)"], "add": ["gripper_empty", "at(red_block,bowl)"],
             "del": ["holding(red_block)"]}
    facts = apply(facts, place)
    assert {"in(red_block,bowl)", "at(red_block,bowl)", "gripper_empty"} <= facts
    assert "at(red_block,gripper)" not in facts
    assert unmet(facts, place) == ["holding(red_block)"]


def test_wildcard_delete_effects():
    from robolearn.skills.symbolic import matches

    assert matches("at(red_block,*)", "at(red_block,bowl)")
    assert not matches("at(red_block,*)", "at(green_block,bowl)")
    facts = normalise({"at(red_block,bowl)", "gripper_empty"})
    pick = {"pre": ["gripper_empty"], "add": ["holding(red_block)", "at(red_block,gripper)"],
            "del": ["gripper_empty", "at(red_block,*)", "in(red_block,*)", "on(red_block,*)"]}
    out = apply(facts, pick)
    assert out == {"holding(red_block)", "at(red_block,gripper)"}


def test_skills_and_planner_import_light():
    import subprocess
    import sys

    code = ("import sys, robolearn.skills, robolearn.planner, robolearn.cli.skills, "
            "robolearn.cli.plan; print(' '.join(sys.modules))")
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())
    assert not mods & {"torch", "transformers", "mujoco", "xllamacpp", "rclpy", "gymnasium"}
