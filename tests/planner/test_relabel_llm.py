"""SPRINT-style chain summaries by the real embedded LLM, kept only when grounded."""

import pytest

from robolearn.skills.relabel import LLMSummarizer, chain_entities, start_state
from tests.planner.test_backends import llama
from robolearn.skills.types import SkillCall


def _chain(*calls):
    out = []
    for name, kw in calls:
        out.append(SkillCall(name, tuple(kw.items())))
    return out


PICK_PLACE_CLOSE = _chain(("pick", {"obj": "red_block"}),
                          ("place", {"obj": "red_block", "target": "bowl"}),
                          ("close_drawer", {}))


def test_a_summary_must_name_exactly_the_chains_objects(skills):
    lib = {s.name: s for s in skills}
    summ = LLMSummarizer(backend=None)
    assert chain_entities(PICK_PLACE_CLOSE) == {"red_block", "bowl", "drawer"}
    ok = "put the red cube in the bowl and shut the drawer"
    assert summ.grounded(ok, PICK_PLACE_CLOSE, lib)
    assert not summ.grounded("put the red cube in the bowl", PICK_PLACE_CLOSE, lib)  # dropped
    assert not summ.grounded("put the red and green cubes in the bowl, shut the drawer",
                             PICK_PLACE_CLOSE, lib)  # invented
    assert not summ.grounded("", PICK_PLACE_CLOSE, lib)
    assert not summ.grounded("red bowl drawer " * 20, PICK_PLACE_CLOSE, lib)  # a ramble
    assert sorted(start_state(PICK_PLACE_CLOSE, lib)) == [
        "at(blue_block,table)", "at(green_block,table)", "at(red_block,table)",
        "drawer_open", "gripper_empty"]  # close_drawer needs it open
    prompt = summ.prompt(PICK_PLACE_CLOSE)
    assert prompt.endswith("Plan: pick(red_block); place(red_block, bowl); close_drawer()\n"
                           "Instruction:")
    assert prompt.count("Instruction:") == 7  # 6 shots from the example bank + the query


@llama
def test_the_embedded_model_summarises_or_the_template_stays(skills):
    from robolearn.planner import make_backend

    from robolearn.planner import Planner

    lib = {s.name: s for s in skills}
    be = make_backend("embedded", threads=1)
    summ = LLMSummarizer(be, planner=Planner(skills, be))
    chains = [PICK_PLACE_CLOSE,
              _chain(("open_drawer", {}), ("push", {"obj": "blue_block", "target": "pad"})),
              _chain(("pick", {"obj": "green_block"}),
                     ("place", {"obj": "green_block", "target": "pad"}))]
    for chain in chains:
        text, source = summ(chain, lib)
        assert source in ("llm", "template") and text
        # whatever it returns names exactly the chain's objects and, read back by the
        # planner, leads to the chain's outcome
        assert summ.grounded(text, chain, lib), (text, source)
    assert sum(summ.counts.values()) == 3
    print(summ.counts)
