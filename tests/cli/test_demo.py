"""The end-to-end demo runs on a tiny budget and leaves a complete run folder."""

import json

import pytest

from robolearn.cli.demo import main

pytestmark = pytest.mark.sim


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    assert main([f"out_dir={out}", "episodes=2", "tasks=[Reach]", "image_size=64",
                 "train_steps=4", "train_batch_size=4", "benchmark_episodes=1",
                 "perception_layouts=2", "perception_steps=6"]) == 0
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["store"]["episodes"] == 2
    assert summary["collect"]["tasks"]["Reach"]["successes"] == 2
    assert (out / "demos_summary.png").stat().st_size > 10_000
    assert (out / "Reach.gif").stat().st_size > 1_000
    report = (out / "demo_report.md").read_text()
    assert "| Reach | 2 | 2/2 |" in report
    rt = summary["lerobot_roundtrip"]  # store -> LeRobot v3 -> store
    assert rt["checks_ok"] and rt["metadata_exact"] and rt["exact_keys"] == rt["lowdim_keys"]
    assert rt["video_psnr_db"] > 28 and (out / "lerobot" / "meta" / "info.json").exists()
    assert "## LeRobot v3 round trip" in report
    bench = summary["benchmarks"]["tasks"]["pusht"]  # gym-pusht through the same collector
    assert bench["successes"] == 1 and bench["mean_score"] == 1.0
    assert (out / "benchmarks" / "pusht.gif").stat().st_size > 1_000
    assert "| pusht | 1/1 | 1.000 |" in report
    assert summary["train"]["steps"] == 4 and (out / "train" / "loss.png").exists()
    assert summary["train"]["final_loss"] == summary["train"]["final_loss"]  # not NaN
    per = summary["perception"]  # flow_vla from pixels: perception stage, then the policy
    assert per["layouts"] == 2 and per["frames"] == 20 and per["steps"] == 6
    assert per["policy_flow_loss"] == per["policy_flow_loss"]  # not NaN
    assert per["encoder_point_loss"] > 0 and per["encoder_scene_loss"] > 0
    assert all((out / p).exists() for p in per["plots"])
    assert (out / "perception" / "policy" / "checkpoints" / "latest").exists()
    assert "## flow_vla from pixels in two stages" in report
    plan = summary["plan"]
    assert plan["status"] == "ok" and plan["success"] is True
    assert [s["skill"] for s in plan["plans"][0]["steps"]] == ["pick", "place", "close_drawer"]
    assert (out / "plan" / "video.gif").exists() and "## Planning and execution" in report
    # a second run recreates its own folder ...
    assert main([f"out_dir={out}", "episodes=1", "tasks=[Reach]", "image_size=64",
                 "train_preset=", "plan_instruction=", "benchmark_tasks=[]",
                 "perception_layouts=0"]) == 0
    again = json.loads((out / "demo_summary.json").read_text())
    assert again["store"]["episodes"] == 1 and again["benchmarks"] is None
    assert again["perception"] is None


def test_demo_refuses_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not written by the demo"):
        main([f"out_dir={tmp_path}", "episodes=1"])
    assert (tmp_path / "precious.txt").exists()


def test_demo_bad_override_is_clear(capsys):
    assert main(["episodez=3"]) == 2
    assert "episodez" in capsys.readouterr().err
