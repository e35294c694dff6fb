"""robolearn-skills end to end on a temporary library (no sim needed except `eval`)."""

import json

import pytest

from robolearn.cli.skills import main


@pytest.fixture
def lib(tmp_path, monkeypatch):
    path = tmp_path / "lib.db"
    monkeypatch.setenv("ROBOLEARN_SKILLS", str(path))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_new_library_is_seeded_and_listed(lib, capsys):
    rc, out, err = run(capsys, "list")
    assert rc == 0 and "seeded 6 primitive skills" in err
    assert "place" in out and "obj, target" in out
    rc, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert {r["name"] for r in rows} >= {"pick", "place", "push", "open_drawer"}


def test_add_composite_show_edit_history_revert(lib, capsys):
    run(capsys, "list")
    rc, out, _ = run(capsys, "add", "bin_red", "--composite",
                     "pick(red_block); place(red_block, bowl)", "--description",
                     "put the red block away")
    assert rc == 0 and "added bin_red (v1)" in out
    rc, out, _ = run(capsys, "show", "bin_red", "--json")
    rec = json.loads(out)
    assert rec["execution"]["kind"] == "composite" and "in(red_block,bowl)" in rec["add_effects"]
    run(capsys, "edit", "bin_red", "--description", "bin the red block", "-m", "shorter")
    rc, out, _ = run(capsys, "history", "bin_red", "--json")
    assert [v["op"] for v in json.loads(out)] == ["add", "edit"]
    rc, out, _ = run(capsys, "revert", "bin_red", "1", "--yes")
    rc, out, _ = run(capsys, "show", "bin_red", "--json")
    assert json.loads(out)["description"] == "put the red block away"


def test_destructive_verbs_need_yes(lib, capsys):
    run(capsys, "list")
    with pytest.raises(SystemExit):
        run(capsys, "remove", "pick")
    assert "pick" in run(capsys, "list")[1]
    rc, out, _ = run(capsys, "remove", "pick", "--yes")
    assert rc == 0 and "revert pick 1" in out
    assert "pick " not in run(capsys, "list")[1]


def test_merge_suggest_and_merge(lib, tmp_path, capsys):
    run(capsys, "list")
    rec = json.loads(run(capsys, "show", "pick", "--json")[1])
    dup = {k: v for k, v in rec.items() if k not in ("version", "stats")}
    dup["provenance"]["source"] = "manual"
    (tmp_path / "grab.json").write_text(json.dumps({**dup, "name": "grab"}))
    assert run(capsys, "add", "grab", "--file", tmp_path / "grab.json")[0] == 0
    rc, out, _ = run(capsys, "merge", "--suggest", "--embedder", "hash", "--json")
    assert {"keep": "pick", "drop": "grab", "similarity": 1.0} in json.loads(out)
    rc, out, _ = run(capsys, "merge", "pick", "grab", "--yes")
    assert rc == 0 and "grab" not in run(capsys, "list")[1]


def test_export_import_between_libraries(lib, tmp_path, capsys):
    run(capsys, "list")
    run(capsys, "rename", "reach", "hover")
    rc, out, _ = run(capsys, "export", tmp_path / "x.json")
    assert "exported 6 skills" in out
    other = tmp_path / "other.db"
    rc, out, _ = run(capsys, "--library", other, "import", tmp_path / "x.json")
    assert rc == 0 and "7 new" in out  # 6 live names + the renamed-away one (its history)
    rc, out, _ = run(capsys, "--library", other, "list", "--json")
    assert "hover" in {r["name"] for r in json.loads(out)}


def test_errors_are_one_clear_line(lib, capsys):
    run(capsys, "list")
    rc, _, err = run(capsys, "show", "fly")
    assert rc == 1 and "no skill 'fly'" in err and "known:" in err
    rc, _, err = run(capsys, "add", "Bad Name", "--description", "x")
    assert rc == 1 and "bad skill name" in err


def test_corrupt_library_is_reported(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 200)
    rc, _, err = run(capsys, "--library", bad, "list")
    assert rc == 1 and "corrupt" in err and "salvage" in err


@pytest.mark.parametrize("verb", ["list", "show", "add", "edit", "rename", "remove", "merge",
                                  "history", "revert", "eval", "relabel", "bootstrap", "export",
                                  "import"])
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0 and "usage: robolearn-skills " + verb in capsys.readouterr().out


@pytest.mark.sim
def test_eval_runs_in_sim_and_records_stats(lib, capsys):
    pytest.importorskip("mujoco")
    run(capsys, "list")
    rc, out, _ = run(capsys, "eval", "pick", "--env", "Pick", "--seeds", "1", "--json")
    res = json.loads(out)
    assert rc == 0 and res["attempts"] == 1 and res["successes"] == 1
    rc, out, _ = run(capsys, "show", "pick", "--json")
    assert json.loads(out)["stats"][0]["env"] == "Pick"


def test_relabel_describes_chains_and_writes_them_back(lib, tmp_path, capsys):
    from robolearn.data.store import TrajectoryStore
    from robolearn.data.testing import make_synthetic_store

    url = tmp_path / "demos.zarr"
    make_synthetic_store(url, lengths=(10, 6)).close()  # each episode: reach then pick
    run(capsys, "list")
    rc, out, _ = run(capsys, "relabel", url, "--summarizer", "template", "--yes", "--json")
    rows = json.loads(out)
    assert rc == 0 and len(rows) == 2
    assert rows[0] == {"episode": 0, "start": 0, "stop": 10, "skills": ["reach", "pick"],
                       "instruction": "move the gripper above the target, then pick up the obj",
                       "source": "template"}
    with TrajectoryStore.open(url) as st:
        assert st.attrs["skill_relabels"] == rows
