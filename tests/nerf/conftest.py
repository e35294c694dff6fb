"""Shared fixtures of the NeRF bridge tests.

Tests that need nerfstudio carry the ``nerf`` marker and skip where it is not installed
(it lives in the ``nerf`` extra, see robolearn.nerf.tv_compat for the torchvision fix).
"""

from __future__ import annotations

import importlib.util

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "nerf: needs nerfstudio (the `nerf` extra)")


def nerfstudio_importable() -> bool:
    if importlib.util.find_spec("nerfstudio") is None:
        return False
    try:
        from robolearn.nerf.tv_hook import ensure_torchvision

        ensure_torchvision()
        import nerfstudio.models.nerfacto  # noqa: F401
        return True
    except Exception:
        return False


HAS_NERFSTUDIO = nerfstudio_importable()
needs_nerfstudio = pytest.mark.skipif(not HAS_NERFSTUDIO, reason="nerfstudio not importable "
                                      "(pip install -e .[nerf])")
