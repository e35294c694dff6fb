"""robolearn's command-line entry points (``robolearn-*``); shared helpers below."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def checkpoint_cli(prog: str, doc: str, default_preset: str, group: str,
                   argv: list[str] | None,
                   check: Callable[[Any], None] | None = None) -> tuple[Any, Any] | int:
    """The front half of every CLI that runs a trained policy (eval, serve): parse
    ``--preset`` + hydra overrides, compose the config, require ``checkpoint``, validate
    (plus ``check``, which raises ValueError/KeyError naming the problem) and resolve the
    policy folder.  Returns ``(cfg, policy_dir)``, or exit status 2 after one line on stderr.
    """
    from robolearn.config import compose_cli
    from robolearn.policies.base import resolve_policy_dir

    ap = argparse.ArgumentParser(prog=prog, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=default_preset, help=f"preset under configs/{group}")
    ap.add_argument("overrides", nargs="*", help="hydra overrides key=value")
    args = ap.parse_args(argv)
    cfg = compose_cli(prog, args.preset, args.overrides, group)
    if cfg is None:
        return 2
    if cfg.checkpoint in ("", "???"):
        print(f"{prog}: checkpoint is not set; pass checkpoint=RUN_OR_POLICY_FOLDER",
              file=sys.stderr)
        return 2
    try:
        cfg.validate()
        if check is not None:
            check(cfg)
        return cfg, resolve_policy_dir(cfg.checkpoint)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
        print(f"{prog}: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
