"""The acceptance bar, measured: every expert >= 95% over 50 randomised seeds, both arms.

Minutes per case, so it is ``slow`` and runs only when asked for explicitly
(``pytest -m slow tests/envs/test_expert_rates.py``, or ``make test-all``); the same
numbers come from ``python benchmarks/bench_experts.py``.
"""

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.sim]


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("50-seed expert rates: run with -m slow")


def _bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_experts.py"
    spec = importlib.util.spec_from_file_location("bench_experts", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("robot", ["panda", "ur5e"])
@pytest.mark.parametrize("task", ["Reach", "Pick", "PickPlace", "Push", "OpenDrawer",
                                  "CloseDrawer", "BowlThenCloseDrawer", "SortBlocks", "TidyUp"])
def test_expert_success_rate_over_50_seeds(task, robot):
    res = _bench().run_task(task, robot, 50)
    assert res["ok"] >= 48, res  # >= 95 %
