import pytest

from robolearn.planner.testing import SCENE  # noqa: F401
from robolearn.skills.seed import PARAPHRASES
from robolearn.skills.types import Execution, Param, Provenance, Skill

CUBES = ["red_block", "green_block", "blue_block"]


def tabletop_skills() -> list[Skill]:
    """The sim's primitives as records, written out so planner tests need no sim."""
    def sk(name, params, desc, pre, add, dele):
        return Skill(name, desc, [Param(n, t, v) for n, t, v in params],
                     list(PARAPHRASES.get(name, [])), Execution("scripted", primitive=name),
                     pre, add, dele, Provenance("seeded", "test"), ["primitive"])
    obj = ("obj", "object", CUBES)
    return [
        sk("reach", [("target", "reach_target", CUBES + ["bowl", "pad"])],
           "move the gripper above the {target}", [], [], []),
        sk("pick", [obj], "pick up the {obj}", ["gripper_empty"],
           ["holding({obj})", "at({obj},gripper)"],
           ["gripper_empty", "at({obj},*)", "in({obj},*)", "on({obj},*)"]),
        sk("place", [obj, ("target", "place_target", ["bowl", "pad"])],
           "put the {obj} on the {target}", ["holding({obj})"],
           ["gripper_empty", "at({obj},{target})"], ["holding({obj})", "at({obj},gripper)"]),
        sk("push", [obj, ("target", "push_target", ["pad"])], "push the {obj} onto the {target}",
           ["gripper_empty", "at({obj},table)"], ["on({obj},{target})", "at({obj},{target})"],
           ["at({obj},table)"]),
        sk("open_drawer", [], "open the drawer", ["gripper_empty", "drawer_closed"],
           ["drawer_open"], ["drawer_closed"]),
        sk("close_drawer", [], "close the drawer", ["gripper_empty", "drawer_open"],
           ["drawer_closed"], ["drawer_open"]),
    ]


@pytest.fixture
def skills():
    return tabletop_skills()
