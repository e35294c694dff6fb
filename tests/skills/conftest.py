import pytest

from robolearn.skills import Execution, Param, Provenance, Skill, SkillStore


def make_skill(name="pick", desc="pick up the {obj}", **kw) -> Skill:
    base = dict(name=name, description=desc,
                params=[Param("obj", "object", ["red_block", "green_block"])],
                preconditions=["gripper_empty", "reachable({obj})"],
                add_effects=["holding({obj})"], del_effects=["gripper_empty"],
                execution=Execution("scripted", primitive=name),
                provenance=Provenance("manual", "test"))
    base.update(kw)
    return Skill(**base)


@pytest.fixture
def store(tmp_path):
    s = SkillStore(tmp_path / "lib.db")
    yield s
    s.close()
