"""torchvision beside a CPU torch: the fix makes it importable (and PaliGemma with it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                                reason="torchvision not installed")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_ensure_torchvision_makes_it_importable():
    r = _run("from robolearn.nerf.tv_hook import ensure_torchvision\n"
             "ops = ensure_torchvision()\n"
             "import torchvision, torchvision.transforms.functional as F, torch\n"
             "assert F.resize(torch.zeros(3, 8, 8), [4, 4]).shape == (3, 4, 4)\n"
             "print('c_ops', ops)")
    assert r.returncode == 0, r.stderr[-2000:]


def test_import_hook_applies_before_any_torchvision_import():
    # what the .pth file does at start-up: no torch until torchvision is imported
    r = _run("import sys\n"
             "from robolearn.nerf.tv_hook import install_import_hook\n"
             "install_import_hook()\n"
             "assert 'torch' not in sys.modules\n"
             "import torchvision.models\n"
             "print(torchvision.__version__)")
    assert r.returncode == 0, r.stderr[-2000:]
