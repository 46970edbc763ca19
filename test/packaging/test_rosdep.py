"""rosdep: package.xml declares every third-party module the package imports, by its rosdep key, and
nothing else; what has no rosdep key is README's pip step, exactly.

The imports are read from the source (the AST of pilotnet_brain/ and launch/; test/ for test_depend),
so a new `import x` fails here until x is in IMPORTS below and then in package.xml or the README.
"""

import ast
import re
import sys
import xml.etree.ElementTree as ET

from conftest import REPO_ROOT

ROOT = REPO_ROOT

#: Import name -> rosdep key. ROS packages are keys by their own name (rosdistro's distribution.yaml);
#: the python3-* keys are in rosdistro's rosdep/python.yaml.
ROSDEP_KEYS = {
    "ament_index_python": "ament_index_python",
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "std_msgs": "std_msgs",
    "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs",
    "nav_msgs": "nav_msgs",
    "rosgraph_msgs": "rosgraph_msgs",
    "tf2_msgs": "tf2_msgs",
    "cv_bridge": "cv_bridge",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "onnxruntime": "python3-onnxruntime-pip",
    "pytest": "python3-pytest",
    "setuptools": "python3-setuptools",
}
#: Import name -> the pip distribution that provides it, for modules with no rosdep key.
PIP_ONLY = {
    "safetensors": "safetensors",
    "rosbags": "rosbags",
    "mcap": "mcap",  # reads a bag whose recorder was killed (no index)
    "torch": "torch",
    "onnx": "onnx",
    "tensorflow": "tensorflow-cpu",
    "keras": "tensorflow-cpu",  # keras 3 is a dependency of tensorflow
    "ai_edge_litert": "ai-edge-litert",
    "ray": "ray",  # sweeps; rosdistro has no key for it
}
#: Declared though never imported, and why.
NOT_IMPORTED = {"ros2launch": "the `ros2 launch` command that runs launch/*.launch.py"}

README_SECTION = "### Installing in a ROS 2 workspace (rosdep + pip)"


def third_party_imports(*folders) -> dict:
    """Top-level names of absolute imports in the .py files under `folders` (not the standard library,
    not the package, not the folders' own modules) -> the files importing them."""
    local = {"pilotnet_brain", "__future__"}
    files = [f for folder in folders for f in sorted((ROOT / folder).rglob("*.py"))]
    if "test" in folders:  # the tests import their helpers and stand-ins (test/stand_ins) by their own name
        local |= {p.stem for p in (ROOT / "test").rglob("*") if p.suffix in (".py", "")}
    found = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(f.relative_to(ROOT)))
    return found


def package_xml_depends(*tags) -> set:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {el.text.strip() for tag in tags for el in root.findall(tag) if el.text}


def readme_pip_packages() -> set:
    """The distributions of the `python3 -m pip install ...` lines in the README's rosdep + pip section."""
    text = (ROOT / "README.md").read_text()
    assert README_SECTION in text, f"README.md has no section {README_SECTION!r}"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    packages = set()
    for line in section.splitlines():
        command = line.split("#", 1)[0].split()
        if command[:4] != ["python3", "-m", "pip", "install"]:
            continue
        words = iter(command[4:])
        for word in words:
            if word in ("--index-url", "--extra-index-url"):
                next(words)  # the option's value
            elif not word.startswith("-"):
                packages.add(re.split(r"[<>=!~\[]", word, maxsplit=1)[0])
    return packages


def test_every_import_has_a_rosdep_key_or_a_pip_step():
    imports = third_party_imports("pilotnet_brain", "launch") | third_party_imports("test")
    unknown = {name: sorted(files) for name, files in imports.items() if name not in ROSDEP_KEYS | PIP_ONLY}
    assert not unknown, f"imports with neither a rosdep key nor a pip step in this table: {unknown}"


def test_package_xml_declares_exactly_the_runtime_imports():
    imports = third_party_imports("pilotnet_brain", "launch")
    wanted = {ROSDEP_KEYS[name] for name in imports if name in ROSDEP_KEYS} | set(NOT_IMPORTED)
    declared = package_xml_depends("exec_depend", "depend")
    assert not wanted - declared, f"imported but not in package.xml: {sorted(wanted - declared)}"
    assert not declared - wanted, f"in package.xml but never imported: {sorted(declared - wanted)}"


def test_package_xml_test_depends_are_what_only_the_tests_import():
    runtime = set(third_party_imports("pilotnet_brain", "launch"))
    test_only = set(third_party_imports("test")) - runtime
    wanted = {ROSDEP_KEYS[name] for name in test_only if name in ROSDEP_KEYS}
    assert package_xml_depends("test_depend") == wanted


def test_readme_pip_step_installs_exactly_what_has_no_rosdep_key():
    imports = third_party_imports("pilotnet_brain", "launch")
    wanted = {PIP_ONLY[name] for name in imports if name in PIP_ONLY}
    listed = readme_pip_packages()
    assert not wanted - listed, f"no rosdep key and not in README's pip step: {sorted(wanted - listed)}"
    assert not listed - wanted, f"in README's pip step but never imported: {sorted(listed - wanted)}"


def test_the_table_has_no_stale_entries():
    everything = set(third_party_imports("pilotnet_brain", "launch")) | set(third_party_imports("test"))
    assert not (set(ROSDEP_KEYS) | set(PIP_ONLY)) - everything
    assert not set(ROSDEP_KEYS) & set(PIP_ONLY)
