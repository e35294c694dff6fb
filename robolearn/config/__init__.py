"""Typed configuration: dataclass schemas + YAML presets under ``configs/``, composed by hydra.

Every preset in ``configs/`` starts with ``defaults: [<schema name>, _self_]``: hydra merges
the YAML onto the registered dataclass, so an unknown key or a wrongly typed value is an
error at load time, not a silent no-op.  Use :func:`compose` from code and tests; CLIs
accept ``key=value`` overrides on the command line and pass them through.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

from robolearn.config.registry import SCHEMAS, register_schemas

__all__ = ["SCHEMAS", "ConfigError", "compose", "compose_cli", "config_dir", "register_schemas",
           "list_presets"]


class ConfigError(ValueError):
    """A preset or override does not fit its schema."""


def config_dir() -> Path:
    """Where the YAML presets live.

    ``$ROBOLEARN_CONFIG_DIR`` if set; else ``configs/`` of the source checkout this package
    was imported from (editable installs, tests); else the copy installed by ``setup.py``
    under ``<prefix>/share/robolearn/configs`` (wheels, colcon installs).
    """
    env = os.environ.get("ROBOLEARN_CONFIG_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "configs"
    if here.is_dir():
        return here
    for prefix in (sys.prefix, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)[0]):
        cand = Path(prefix) / "share" / "robolearn" / "configs"
        if prefix and cand.is_dir():
            return cand
    raise ConfigError("cannot find robolearn's configs/ folder; set ROBOLEARN_CONFIG_DIR to it")


def list_presets() -> list[str]:
    """Every preset name (path under configs/ without .yaml), e.g. ``demo``, ``data/sampler``."""
    root = config_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml")
                  if "ros" not in p.relative_to(root).parts)


def compose(name: str, overrides: Sequence[str] = ()) -> Any:
    """Compose preset ``name`` with ``key=value`` overrides into its typed dataclass."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    register_schemas()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=name, overrides=list(overrides))
        return OmegaConf.to_object(cfg)
    except Exception as e:  # hydra/omegaconf raise many types; give one clear line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"config {name!r} with overrides {list(overrides)}: {msg} "
                          f"(valid presets: {', '.join(list_presets())})") from e


def compose_cli(prog: str, preset: str, overrides: Sequence[str], group: str) -> Any:
    """A CLI's preset under ``configs/<group>/`` + overrides -> its typed config, or None
    after printing one line that names the problem and the valid choices (unknown preset,
    config not fitting its schema): the CLI then exits with status 2.
    """
    presets = [p for p in list_presets() if p.startswith(group + "/")]
    if preset not in presets:
        print(f"{prog}: unknown preset {preset!r}; valid: {', '.join(presets)}", file=sys.stderr)
        return None
    try:
        return compose(preset, overrides)
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return None
