"""Static checks of the launch files and the node graphs they adapt: every executable,
parameter file, remapping and launch argument they name exists and is used."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from robolearn.ros_nodes.graph import LAUNCH_ARGS, graph, share_dir

ROOT = Path(__file__).resolve().parents[2]
SETUP = (ROOT / "setup.py").read_text()
SCRIPTS = set(re.findall(r'"(\w+_node) = robolearn\.ros_nodes\.(\w+):main"', SETUP))


@pytest.mark.parametrize("launch_file", sorted((ROOT / "launch").glob("*.launch.py")))
def test_launch_file_is_a_thin_adapter(launch_file):
    src = launch_file.read_text()
    tree = ast.parse(src)
    graph_name = next(n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                      and getattr(n.targets[0], "id", None) == "GRAPH")
    assert graph_name in LAUNCH_ARGS
    assert "generate_launch_description" in src and "launch_description(GRAPH)" in src


def test_every_node_gets_the_dds_profile():
    from xml.etree import ElementTree

    from robolearn.ros_nodes.graph import node_environment

    path = Path(node_environment({})["FASTRTPS_DEFAULT_PROFILES_FILE"])
    root = ElementTree.parse(path).getroot()  # well-formed, with a large SHM segment
    seg = [e for e in root.iter() if e.tag.endswith("segment_size")]
    assert seg and int(seg[0].text) >= 4 * 640 * 480 * 3
    assert node_environment({"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {}  # user's wins


@pytest.mark.parametrize("name", sorted(LAUNCH_ARGS))
def test_graph_names_only_things_that_exist(name):
    specs = graph(name)
    assert specs
    for s in specs:
        assert (s.executable, s.executable) in SCRIPTS, f"{s.executable} is not a console script"
        assert (ROOT / "ros_nodes" / f"{s.executable}.py").exists()
        for f in s.params_files:
            d = yaml.safe_load((share_dir() / f).read_text())
            assert s.name in d and "ros__parameters" in d[s.name], f"{f} has no {s.name} section"
        for src, dst in s.remappings:
            assert src and dst and not src.startswith("/"), "remap relative topic names"


@pytest.mark.parametrize("name", sorted(LAUNCH_ARGS))
def test_every_launch_argument_is_used(name):
    # with a checkpoint and the optional nodes on, so their arguments are part of the graph
    on = {"checkpoint": "some/run", "nerf": "true"}
    base = {k: v for k, v in on.items() if k in LAUNCH_ARGS[name]}
    defaults = graph(name, **base)
    for arg, (default, _) in LAUNCH_ARGS[name].items():
        default = base.get(arg, default)
        probe = ("77" if default.isdigit() else "77.5" if default.replace(".", "").isdigit()
                 else {"true": "false", "false": "true"}.get(default, "probe_value_x"))
        changed = graph(name, **{**base, arg: probe})
        assert changed != defaults, f"launch argument {arg!r} of {name!r} changes nothing"


def test_unknown_launch_argument_is_an_error():
    with pytest.raises(KeyError, match="unknown launch arguments"):
        graph("sim", tsak="Reach")


def test_sim_graph_adds_the_policy_node_only_with_a_checkpoint():
    assert "policy_node" not in [s.executable for s in graph("sim")]
    specs = {s.executable: s for s in graph("sim", checkpoint="runs/x")}
    assert specs["policy_node"].parameters["autostart"] is True
    assert specs["policy_node"].parameters["checkpoint"] == "runs/x"


def test_planner_reconditions_the_policy_through_its_own_topic():
    specs = {s.executable: s for s in graph("sim", checkpoint="runs/x", planner="true")}
    assert ("task/instruction", "policy/instruction") in specs["policy_node"].remappings
    assert "planner_node" in specs
