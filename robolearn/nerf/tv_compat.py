"""CLI for the torchvision-beside-CPU-torch fix (see :mod:`robolearn.nerf.tv_hook`).

    python -m robolearn.nerf.tv_compat --install     # once per venv (make install-nerf)
    python -m robolearn.nerf.tv_compat --check
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

from robolearn.nerf.tv_hook import ensure_torchvision

PTH_NAME = "robolearn_torchvision_compat.pth"
#: the .pth line: cheap at start-up (no torch import), silent if robolearn is uninstalled
PTH_LINE = ('import sys; exec("try:\\n import robolearn.nerf.tv_hook as _m; _m.install_import_hook()'
            '\\nexcept Exception:\\n pass")\n')


def pth_path() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m robolearn.nerf.tv_compat", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--install", action="store_true", help=f"write {PTH_NAME} into site-packages")
    g.add_argument("--uninstall", action="store_true", help="remove that file")
    g.add_argument("--check", action="store_true", help="import torchvision and report")
    args = ap.parse_args(argv)
    if args.install:
        pth_path().write_text(PTH_LINE)
        print(f"wrote {pth_path()}")
    elif args.uninstall:
        pth_path().unlink(missing_ok=True)
        print(f"removed {pth_path()}")
    else:
        if importlib.util.find_spec("torchvision") is None:
            print("torchvision is not installed")
            return 1
        c_ops = ensure_torchvision()
        import torchvision

        print(f"torchvision {torchvision.__version__} imports; C++ ops "
              f"{'available' if c_ops else 'unavailable (CPU torch + CUDA wheel; fix applied)'}; "
              f".pth hook {'installed' if pth_path().is_file() else 'not installed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
