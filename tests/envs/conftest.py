"""Fixtures for the sim tests: the robot models must be installed (`make setup` /
`python -m robolearn.envs.assets`); small cameras keep rendering cheap."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _assets():
    from robolearn.envs.assets import is_installed

    if not is_installed():
        pytest.skip("robot models not installed; run `python -m robolearn.envs.assets`")


def make_env(task="PickPlace", cameras=(), resolution=32, **kw):
    from robolearn.envs.tabletop_env import TabletopEnv

    return TabletopEnv(task, cameras={"names": list(cameras), "resolution": resolution}, **kw)


@pytest.fixture
def env_factory():
    made = []

    def _make(*a, **kw):
        env = make_env(*a, **kw)
        made.append(env)
        return env

    yield _make
    for env in made:
        env.close()
