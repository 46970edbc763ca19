"""The parameter schemas (pilotnet_brain/config.py): validation, the one reader of parameter files, and
what is generated from them (README tables, config/simulation.yaml, SimConfig's defaults, CLI checks)."""

import math

import pytest
from conftest import REPO_ROOT

from pilotnet_brain import config
from pilotnet_brain.config import (
    BAG_RECORDER,
    BRAIN_NODE,
    METRICS_NODE,
    NODE_SCHEMAS,
    SIM_NODE,
    Parameter,
    read_parameter_file,
)
from pilotnet_brain.errors import ConfigError

#: ROS 2 parameter files (config/ros_gz_bridge.yaml is ros_gz_bridge's own format: test/ros/test_gazebo_bridge.py).
SHIPPED_FILES = [p for p in sorted((REPO_ROOT / "config").glob("*.yaml")) if p.name != "ros_gz_bridge.yaml"] + sorted(
    (REPO_ROOT / "config" / "brains").glob("*.yaml")
)


def write(tmp_path, text, name="params.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- one parameter --------------------------------------------------------------------------------
def test_an_integer_is_accepted_for_a_float_and_becomes_a_float():
    value = SIM_NODE["timeout"].check(60)
    assert value == 60.0 and isinstance(value, float)


@pytest.mark.parametrize(
    ("schema", "name", "value", "problem", "allowed"),
    [
        (BRAIN_NODE, "max_v", -5, "max_v=-5 is out of range", "a float >= 0"),
        (BRAIN_NODE, "max_v", math.nan, "max_v=nan is not finite", "a float >= 0"),
        (BRAIN_NODE, "max_w", math.inf, "max_w=inf is not finite", "a float >= 0"),
        (BRAIN_NODE, "watchdog_timeout", -1, "watchdog_timeout=-1 is out of range", "a float >= 0"),
        (SIM_NODE, "timeout", -5, "timeout=-5 is out of range", "a float >= 0"),
        (SIM_NODE, "camera_rate", 0.0, "camera_rate=0.0 is out of range", "a float > 0"),
        (BRAIN_NODE, "max_v", True, "max_v=true is not a float", "a float >= 0"),
        (BRAIN_NODE, "max_v", "fast", "max_v='fast' is not a float", "a float >= 0"),
        (BRAIN_NODE, "threads", 1.5, "threads=1.5 is not an integer", "an integer >= 0"),
        (BRAIN_NODE, "threads", True, "threads=true is not an integer", "an integer >= 0"),
        (BRAIN_NODE, "device", "gpu", "device='gpu' is not allowed", "one of cpu, cuda"),
        (SIM_NODE, "wait_for_brain", 1, "wait_for_brain=1 is not a bool", "true or false"),
        (METRICS_NODE, "output_dir", 7, "output_dir=7 is not a string", "a string"),
        (BAG_RECORDER, "camera_stride", 0, "camera_stride=0 is out of range", "an integer >= 1"),
    ],
)
def test_a_bad_value_is_one_line_naming_parameter_value_and_range(schema, name, value, problem, allowed):
    with pytest.raises(ConfigError) as error:
        schema.validate({name: value}, "somewhere")
    message = str(error.value)
    assert message == f"somewhere: {problem} (allowed: {allowed})"
    assert "\n" not in message


def test_bounds_are_inclusive_unless_exclusive():
    assert BRAIN_NODE["max_v"].check(0) == 0.0
    assert SIM_NODE["scale"].check(1e-6) == 1e-6
    with pytest.raises(ConfigError, match="scale=0"):
        SIM_NODE["scale"].check(0)
    bounded = Parameter("ratio", float, 0.5, "a ratio", min=0.0, max=1.0)
    assert bounded.allowed() == "a float in [0, 1]" and bounded.check(1) == 1.0
    with pytest.raises(ConfigError, match=r"ratio=1.5 is out of range \(allowed: a float in \[0, 1\]\)"):
        bounded.check(1.5)


def test_a_default_outside_its_own_range_is_refused_when_the_schema_is_built():
    with pytest.raises(ConfigError, match="schema: rate=-1.0"):
        Parameter("rate", float, -1.0, "Hz", min=0.0)


def test_unknown_names_are_an_error_listing_the_known_ones_and_ros_builtins_pass():
    with pytest.raises(ConfigError) as error:
        BRAIN_NODE.validate({"max_speed": 3.0, "brain": "explicit"}, "file.yaml: brain_node")
    assert str(error.value) == (
        "file.yaml: brain_node: unknown parameter(s) max_speed; known: " + ", ".join(BRAIN_NODE.names)
    )
    assert BRAIN_NODE.validate({"use_sim_time": True, "max_v": 2}) == {"max_v": 2.0}


def test_resolve_fills_in_the_defaults():
    params = BRAIN_NODE.resolve({"max_v": 4})
    assert params == {**BRAIN_NODE.defaults(), "max_v": 4.0}


# --- the reader -----------------------------------------------------------------------------------
def test_file_without_a_section_for_the_node_names_the_sections_found(tmp_path):
    path = write(tmp_path, "sim_node:\n  ros__parameters:\n    clock: realtime\nmetrics_node:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError) as error:
        read_parameter_file(path, BRAIN_NODE)
    assert str(error.value) == f"{path}: no section for brain_node (sections found: sim_node, metrics_node)"


@pytest.mark.parametrize(
    "text",
    ["- 1\n- 2\n", "brain_node: 3\n", "brain_node:\n  parameters:\n    max_v: 1.0\n", "brain_node: [unclosed\n"],
)
def test_malformed_files_are_one_clear_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=str(path)) as error:
        read_parameter_file(path, BRAIN_NODE)
    assert "Traceback" not in str(error.value)


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read parameter file"):
        read_parameter_file(tmp_path / "nope.yaml", BRAIN_NODE)


def test_bad_values_in_a_file_name_the_file_the_node_and_the_parameter(tmp_path):
    path = write(tmp_path, "brain_node:\n  ros__parameters:\n    max_v: -5\n")
    with pytest.raises(ConfigError) as error:
        read_parameter_file(path, BRAIN_NODE)
    assert str(error.value) == f"{path}: brain_node: max_v=-5 is out of range (allowed: a float >= 0)"


WILDCARD_FILE = """
/**:
  ros__parameters:
    max_v: 4.0
    max_w: 1.0
brain_node:
  ros__parameters:
    max_v: 6
/robot:
  brain_node:
    ros__parameters:
      max_w: 2.0
"""


def readers():
    """The YAML reader here, and rclpy's where it imports (the ROS code uses that one)."""
    out = [pytest.param(None, id="yaml")]
    try:
        from pilotnet_brain.ros.params import rclpy_parameters

        __import__("rclpy.parameter")
        out.append(pytest.param(rclpy_parameters, id="rclpy"))
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("parse", readers())
def test_wildcard_and_namespaced_sections_apply_as_in_ros(tmp_path, parse):
    path = write(tmp_path, WILDCARD_FILE)
    assert read_parameter_file(path, BRAIN_NODE, parse=parse) == {"max_v": 6.0, "max_w": 1.0}
    assert read_parameter_file(path, BRAIN_NODE, "/robot/brain_node", parse=parse) == {"max_v": 4.0, "max_w": 2.0}
    only_wildcard = write(tmp_path, "/**:\n  ros__parameters:\n    max_v: 4.0\n", "wild.yaml")
    assert read_parameter_file(only_wildcard, BRAIN_NODE, parse=parse) == {"max_v": 4.0}
    with pytest.raises(ConfigError, match=r"sim_node: unknown parameter\(s\) max_v"):  # /** is every node's
        read_parameter_file(only_wildcard, SIM_NODE, parse=parse)


@pytest.mark.parametrize("parse", readers())
def test_nested_names_are_dotted_and_unknown(tmp_path, parse):
    path = write(tmp_path, "brain_node:\n  ros__parameters:\n    limits:\n      max_v: 1.0\n")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) limits.max_v"):
        read_parameter_file(path, BRAIN_NODE, parse=parse)


@pytest.mark.parametrize("parse", readers())
@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.name)
def test_every_shipped_parameter_file_validates(path, parse):
    schema = SIM_NODE if path.name == "simulation.yaml" else BRAIN_NODE
    values = read_parameter_file(path, schema, parse=parse)
    assert values, path  # each file sets something
    if schema is BRAIN_NODE and values.get("brain") == "pilotnet":
        from pilotnet_brain.runtime.registry import BACKEND_NAMES

        assert values["backend"] in BACKEND_NAMES


def test_shipped_files_cover_every_preset_directory():
    assert {p.parent.name for p in SHIPPED_FILES} == {"config", "brains"}
    assert {"simulation.yaml", "explicit.yaml", "pilotnet_fp32.yaml"} <= {p.name for p in SHIPPED_FILES}


# --- the schema agrees with the code that consumes the values ----------------------------------------
def test_choices_are_the_package_names():
    from pilotnet_brain.brains import BRAIN_NAMES
    from pilotnet_brain.sim.clock import CLOCKS

    assert BRAIN_NODE["brain"].choices == BRAIN_NAMES
    assert SIM_NODE["clock"].choices == CLOCKS
    assert BAG_RECORDER["clock"].choices == ("", *CLOCKS)
    try:
        from pilotnet_brain.bags.writer import STORAGE_IDS
    except ImportError as error:  # rosbags missing
        pytest.skip(f"bags need {error.name}")
    assert BAG_RECORDER["storage"].choices == STORAGE_IDS


def test_sim_config_defaults_are_the_schema_defaults():
    from pilotnet_brain.sim.settings import sim_config_from_parameters
    from pilotnet_brain.sim.world import SimConfig

    assert sim_config_from_parameters({}) == SimConfig()
    c = SimConfig()
    assert (c.clock, c.camera_rate_hz, c.physics_dt_s, c.off_track_margin_m) == tuple(
        SIM_NODE[n].default for n in ("clock", "camera_rate", "physics_dt", "off_track_margin")
    )
    # the sentinels: timeout 0 = the circuit's time-out, latency < 0 = measured
    assert SIM_NODE["timeout"].default == 0 and c.timeout_s is None
    assert SIM_NODE["latency"].default < 0 and c.latency_s is None


def test_sim_config_from_parameters_validates_and_maps():
    from pilotnet_brain.sim.settings import sim_config_from_parameters

    c = sim_config_from_parameters({"timeout": 60, "latency": 0.02, "camera_rate": 15, "clock": "realtime"})
    assert (c.timeout_s, c.latency_s, c.camera_rate_hz, c.clock) == (60.0, 0.02, 15.0, "realtime")
    assert isinstance(c.timeout_s, float)
    with pytest.raises(ConfigError, match=r"^here: physics_dt=-0.01 is out of range \(allowed: a float > 0\)$"):
        sim_config_from_parameters({"physics_dt": -0.01}, "here")


def test_cli_sim_options_and_config_file_are_checked_by_the_schema(tmp_path, capsys):
    from pilotnet_brain.cli.main import main

    with pytest.raises(SystemExit) as stop:  # refused by the option's type, built from the same spec
        main(["drive", "--brain", "explicit", "--camera-rate", "-5", "--timeout", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pilotnet-brain drive: error: argument --camera-rate: camera_rate=-5.0 is out of range (allowed: a float > 0)"
    )
    bad = write(tmp_path, "sim_node:\n  ros__parameters:\n    latency: .inf\n")
    assert main(["drive", "--brain", "explicit", "--config", str(bad), "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pilotnet-brain drive: error: {bad}: sim_node: latency=") and "\n" not in err
    assert "(allowed: a finite float)" in err


# --- generated text -------------------------------------------------------------------------------
def test_readme_parameter_section_is_generated_from_the_schemas():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(config.README_BEGIN + "\n", 1)[1].split(config.README_END, 1)[0]
    assert section == config.parameters_markdown(), "regenerate: python -m pilotnet_brain.config --readme README.md"
    for schema in NODE_SCHEMAS.values():
        for p in schema:
            assert f"| `{p.name}` |" in section


def test_readme_section_replacement_touches_only_the_marked_part():
    text = f"intro\n{config.README_BEGIN}\nold\n{config.README_END}\noutro\n"
    assert (
        config.replace_readme_section(text, "new\n")
        == f"intro\n{config.README_BEGIN}\nnew\n{config.README_END}\noutro\n"
    )
    with pytest.raises(ConfigError, match="no '<!-- parameters:begin -->'"):
        config.replace_readme_section("no markers", "new\n")


def test_simulation_yaml_is_generated_from_the_schema():
    text = (REPO_ROOT / "config" / "simulation.yaml").read_text()
    assert text == config.simulation_yaml(), (
        "regenerate: python -m pilotnet_brain.config --simulation-yaml config/simulation.yaml"
    )
    assert read_parameter_file(REPO_ROOT / "config" / "simulation.yaml", SIM_NODE) == {
        p.name: p.default for p in config.SIMULATOR_PARAMETERS
    }


def test_launch_arguments_are_node_parameters():
    args = {a.name: a for a in config.SIMULATION_LAUNCH_ARGUMENTS}
    for name in ("circuit", "direction", "scale", "clock", "timeout"):
        assert args[name] == SIM_NODE[name]
    assert args["out_dir"].default == METRICS_NODE["output_dir"].default
    assert config.launch_default(args["record"]) == "false" and config.launch_default(args["scale"]) == "1.0"
    assert (REPO_ROOT / "config" / args["brain_config"].default).is_file()
    brain_args = {a.name: a for a in config.BRAIN_LAUNCH_ARGUMENTS}
    assert list(brain_args) == ["brain_config", "namespace", "camera_topic", "cmd_vel_topic", "use_sim_time"]
    assert brain_args["brain_config"] == args["brain_config"]
    for topic in ("camera_topic", "cmd_vel_topic"):  # remappings of brain_node's topics, from their defaults
        assert brain_args[topic].default == BRAIN_NODE[topic].default
    # ROS's own parameter, in both launch files: known to every node, not declared by the package
    assert args["use_sim_time"] is brain_args["use_sim_time"] is config.USE_SIM_TIME
    assert (
        config.USE_SIM_TIME.name in config.BUILTIN_PARAMETERS and config.launch_default(args["use_sim_time"]) == "false"
    )
