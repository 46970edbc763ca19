"""pilotnet_brain: ament_python ROS 2 package that is also a plain pip package."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "pilotnet_brain"

# The one place versions are pinned. torch: an unpinned torch pulls a multi-GB CUDA build; ruff and
# import-linter: CI checks formatting and the import contracts, which must not change under our feet.
TORCH = "torch==2.13.0"
RUFF = "ruff==0.17.6"
IMPORT_LINTER = "import-linter==2.17"
# Ray: `pilotnet-brain sweep` and `benchmark` run on it; every node of a cluster needs the same version.
RAY = "ray==2.60.0"

# The PyPI ROS 2 (Kilted) wheels. Optional: inside a ROS 2 install the system rclpy must be used.
ROS_WHEELS = [
    "ros-rclpy",
    "ros-sensor-msgs",
    "ros-geometry-msgs",
    "ros-nav-msgs",
    "ros-std-msgs",
    "ros-rosgraph-msgs",
    "ros-rmw-fastrtps-cpp",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    # The shipped PilotNet weights (safetensors + metadata) travel inside the package.
    package_data={PACKAGE: ["models/*.safetensors", "models/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + PACKAGE + "/config/brains", glob("config/brains/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "scipy",
        "pyyaml",
        "matplotlib",
        "tqdm",
        "safetensors",
        "setuptools",
    ],
    extras_require={
        # mcap: reads a bag whose recorder was killed (no index) record by record.
        "ros": ROS_WHEELS + ["rosbags", "mcap"],
        "torch": [TORCH],
        "tf": ["tensorflow-cpu==2.21.0", "ai-edge-litert"],
        "onnx": ["onnx", "onnxruntime"],
        "sweep": [RAY],
        "dev": ["pytest", "colcon-common-extensions", "ros-ament-package", RUFF, IMPORT_LINTER],
    },
    zip_safe=False,
    maintainer="pilotnet_brain developers",
    maintainer_email="dev@pilotnet-brain.invalid",
    description="PilotNet brain nodes, embedded circuit simulator and BehaviorMetrics metrics",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pilotnet-brain = pilotnet_brain.cli.main:main",
            "brain_node = pilotnet_brain.ros.brain_node:main",
            "sim_node = pilotnet_brain.ros.sim_node:main",
            "metrics_node = pilotnet_brain.ros.metrics_node:main",
            "bag_recorder = pilotnet_brain.ros.bag_recorder:main",
        ],
    },
)
