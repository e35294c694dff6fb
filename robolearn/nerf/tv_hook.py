"""Make PyPI's torchvision importable beside a CPU-only torch build (DESIGN.md section 4).

PyPI's torchvision 0.28.0 wheel is built against the CUDA torch: its ``_C.so`` links
``libtorch_cuda.so``/``libc10_cuda.so``, which a CPU torch does not ship.  torchvision
copes with a missing ``_C`` everywhere except two unguarded ``register_fake`` calls
(``torchvision::nms`` and ``torchvision::qnms`` in ``_meta_registrations.py``): they raise
``RuntimeError: operator torchvision::nms does not exist`` and with it every importer of
torchvision fails (nerfstudio, timm, transformers' PaliGemma/SigLIP image processors).

The fix defines those two operator *schemas* (no kernels) before torchvision is imported,
and only when its ``_C`` really cannot be loaded.  The pure-Python parts of torchvision
(transforms, models, io without the C decoder) then work; the C++ ops (nms, roi_align,
deform_conv) keep raising torchvision's own "Couldn't load custom C++ ops" error.  Nothing
in nerfstudio's nerfacto path or in robolearn's VLA stack calls those ops.

Two ways to apply it:

* :func:`ensure_torchvision` -- call before the first ``import torchvision`` (robolearn's
  nerf modules do); a no-op on a CUDA or CPU-matched torchvision.
* ``python -m robolearn.nerf.tv_compat --install`` -- writes a one-line ``.pth`` file into
  the venv's site-packages that installs a lazy import hook: every process in the venv
  (``ns-train``, pytest, transformers users) gets the fix the moment something imports
  torchvision, and pays nothing otherwise (torch is not imported at start-up).
  ``--uninstall`` removes it; ``--check`` reports the state.
"""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

_UNGUARDED_OPS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_state = {"applied": False, "lib": None, "c_loaded": None}


def _torchvision_dir() -> Path | None:
    for entry in sys.path:
        cand = Path(entry or ".") / "torchvision"
        if (cand / "__init__.py").is_file():
            return cand
    return None


def _c_extension_loads(tv_dir: Path) -> bool:
    import torch

    libs = sorted(tv_dir.glob("_C*.so")) + sorted(tv_dir.glob("_C*.pyd"))
    if not libs:
        return False
    try:
        torch.ops.load_library(str(libs[0]))
        return True
    except (OSError, ImportError, RuntimeError):
        return False


def ensure_torchvision() -> bool:
    """Apply the fix if needed (idempotent); return True if torchvision's C ops are usable.

    Must run before torchvision is first imported; after that it can only report.
    """
    if _state["applied"]:
        return bool(_state["c_loaded"])
    _state["applied"] = True
    tv_dir = _torchvision_dir()
    if tv_dir is None or "torchvision" in sys.modules:
        _state["c_loaded"] = tv_dir is not None and _has_ops_if_imported()
        return bool(_state["c_loaded"])
    import torch

    _state["c_loaded"] = _c_extension_loads(tv_dir)
    if not _state["c_loaded"]:
        lib = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901
        for name, schema in _UNGUARDED_OPS.items():
            if not _op_exists(name):
                lib.define(schema)
        _state["lib"] = lib  # the Library object must outlive the definitions
    return bool(_state["c_loaded"])


def _op_exists(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def _has_ops_if_imported() -> bool:
    ext = sys.modules.get("torchvision.extension")
    return bool(ext is not None and ext._has_ops())


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    """Runs :func:`ensure_torchvision` the first time anything imports torchvision."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" and not _state["applied"]:
            sys.meta_path.remove(self)
            ensure_torchvision()
        return None  # let the normal finders import torchvision


def install_import_hook() -> None:
    """Put the lazy hook on ``sys.meta_path`` (what the ``.pth`` file calls)."""
    if not any(isinstance(f, _TorchvisionHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionHook())
