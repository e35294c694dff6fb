import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from robolearn.skills import LibraryCorruptError, LibraryError, SkillStore, salvage

from .conftest import make_skill


def test_every_edit_is_a_new_version_and_old_ones_stay(store):
    store.add(make_skill())
    v2 = store.edit(make_skill(desc="grab the {obj}"), message="shorter")
    assert v2 == 2
    assert store.get("pick").description == "grab the {obj}"
    assert store.get("pick", version=1).description == "pick up the {obj}"
    assert [v.op for v in store.history("pick")] == ["add", "edit"]
    store.revert("pick", 1)
    assert store.get("pick").description == "pick up the {obj}"
    assert store.current_version("pick") == 3


def test_add_twice_and_edit_missing_are_errors(store):
    store.add(make_skill())
    with pytest.raises(LibraryError, match="already exists"):
        store.add(make_skill())
    with pytest.raises(LibraryError, match="no skill 'place'"):
        store.edit(make_skill(name="place"))


def test_optimistic_edit_conflict(store):
    store.add(make_skill())
    store.edit(make_skill(desc="a {obj}"))
    with pytest.raises(LibraryError, match="changed since v1"):
        store.edit(make_skill(desc="b {obj}"), expected_version=1)


def test_remove_rename_revert(store):
    store.add(make_skill())
    store.rename("pick", "grasp")
    assert store.names() == ["grasp"] and store.get("grasp").name == "grasp"
    with pytest.raises(LibraryError, match="renamed"):
        store.get("pick")
    store.remove("grasp")
    assert len(store) == 0
    store.revert("grasp", 1)
    assert store.names() == ["grasp"]


def test_merge_folds_language_and_stats(store):
    store.add(make_skill())
    store.add(make_skill(name="grab", desc="grab the {obj}"))
    store.record("grab", "PickPlace", successes=3, attempts=4)
    store.record("pick", "PickPlace", successes=1, attempts=1)
    store.merge("pick", "grab")
    assert store.names() == ["pick"]
    assert "grab the {obj}" in store.get("pick").paraphrases
    assert store.success_rate("pick", "PickPlace") == pytest.approx(4 / 5)


def test_stats_by_env_and_version(store):
    store.add(make_skill())
    store.record("pick", "Pick", successes=1, attempts=2)
    store.edit(make_skill(desc="grab the {obj}"))
    store.record("pick", "Pick", successes=2, attempts=2)
    store.record("pick", "PickPlace", successes=0, attempts=1)
    rows = {(r["version"], r["env"]): r for r in store.stats("pick")}
    assert rows[(1, "Pick")]["success_rate"] == 0.5
    assert rows[(2, "Pick")]["attempts"] == 2 and rows[(2, "PickPlace")]["successes"] == 0
    with pytest.raises(ValueError):
        store.record("pick", "Pick", successes=3, attempts=1)


def test_export_import_round_trip(store, tmp_path):
    store.add(make_skill())
    store.edit(make_skill(desc="grab the {obj}"))
    store.add(make_skill(name="lift", desc="lift the {obj}"))
    store.remove("lift")
    store.record("pick", "Pick", 1, 1)
    out = tmp_path / "lib.json"
    assert store.export(out) == {"skills": 1, "versions": 4}
    other = SkillStore(tmp_path / "other.db")
    assert other.import_(out) == {"added": 2, "updated": 0}
    assert other.names() == ["pick"] and len(other.history("pick")) == 2
    assert other.get("lift", version=1).description == "lift the {obj}"
    assert other.stats("pick")[0]["attempts"] == 1
    assert other.import_(out) == {"added": 0, "updated": 0}  # idempotent
    with pytest.raises(LibraryError, match="not a robolearn"):
        (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
        other.import_(tmp_path / "x.json")


def _writer(path, k, n):
    s = SkillStore(path)
    for i in range(n):
        s.add(make_skill(name=f"s{k}_{i}", desc="do {obj}"))
        s.record("shared", "Pick", successes=1, attempts=1)
    s.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "lib.db"
    with SkillStore(path) as s:
        s.add(make_skill(name="shared", desc="x {obj}"))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k, 15)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with SkillStore(path) as s:
        assert len(s) == 46
        assert s.stats("shared")[0]["attempts"] == 45


def test_crash_mid_transaction_keeps_committed_state(tmp_path):
    path = tmp_path / "lib.db"
    with SkillStore(path) as s:
        s.add(make_skill())
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from robolearn.skills import SkillStore
        from tests.skills.conftest import make_skill
        s = SkillStore({str(path)!r})
        with s._tx():
            s._append("pick", "edit", make_skill(desc="half {{obj}}"), "", "")
            os.kill(os.getpid(), signal.SIGKILL)  # die before COMMIT
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    with SkillStore(path) as s:
        assert [v.version for v in s.history("pick")] == [1]
        assert s.edit(make_skill(desc="whole {obj}")) == 2


def test_tampered_row_is_detected_and_salvaged(tmp_path):
    path = tmp_path / "lib.db"
    with SkillStore(path) as s:
        s.add(make_skill())
        s.add(make_skill(name="lift", desc="lift the {obj}"))
    raw = sqlite3.connect(path)
    raw.execute("UPDATE versions SET record = replace(record, 'lift the', 'eat the') "
                "WHERE name='lift'")
    raw.commit()
    raw.close()
    with SkillStore(path) as s:
        assert s.get("pick").name == "pick"
        with pytest.raises(LibraryCorruptError, match="checksum mismatch in 'lift'"):
            s.get("lift")
    assert list(tmp_path.glob("lib.db.corrupt-*"))  # a byte copy was kept
    counts = salvage(path, tmp_path / "saved.db")
    assert counts == {"kept": 1, "lost": 1}
    with SkillStore(tmp_path / "saved.db") as s:
        assert s.names() == ["pick"]


def test_garbage_file_is_reported_not_overwritten(tmp_path):
    path = tmp_path / "lib.db"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(LibraryCorruptError, match="corrupt"):
        SkillStore(path)
    assert path.read_bytes() == before


def test_seeded_from_sim_primitives(store):
    pytest.importorskip("gymnasium")
    from robolearn.skills import seed_store

    added = seed_store(store)
    assert {"pick", "place", "push", "open_drawer", "close_drawer"} <= set(added)
    assert seed_store(store) == []  # idempotent
    place = store.get("place")
    assert place.param_names == ["obj", "target"] and place.provenance.source == "seeded"
    assert "bowl" in place.params[1].values and place.execution.primitive == "place"
