"""Every YAML preset in configs/ composes against its schema; unknown keys are errors."""

import pytest
import yaml

from robolearn.config import ConfigError, compose, config_dir, list_presets


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_composes(name):
    cfg = compose(name)
    assert cfg is not None


def test_ros_param_files_are_valid_yaml():
    for p in (config_dir() / "ros").glob("*.yaml"):
        d = yaml.safe_load(p.read_text())
        assert isinstance(d, dict) and all("ros__parameters" in v for v in d.values()), p


def test_unknown_key_and_bad_type_are_errors():
    with pytest.raises(ConfigError, match="bogus"):
        compose("demo", ["bogus=1"])
    with pytest.raises(ConfigError, match="episodes"):
        compose("demo", ["episodes=many"])


def test_override_applies():
    assert compose("demo", ["episodes=3"]).episodes == 3
