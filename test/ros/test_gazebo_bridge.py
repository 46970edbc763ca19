"""config/ros_gz_bridge.yaml: a valid ros_gz_bridge configuration that bridges exactly the topics and types
the package exchanges with a Gazebo car (interfaces.GAZEBO_TOPICS), each in the right direction."""

import pytest
import yaml
from conftest import REPO_ROOT

from pilotnet_brain import interfaces as topics

BRIDGE_CONFIG = REPO_ROOT / "config" / "ros_gz_bridge.yaml"
#: The keys ros_gz_bridge's YAML reader knows (ros_gz_bridge/src/bridge_config.cpp).
KNOWN_KEYS = {
    "topic_name",
    "ros_topic_name",
    "gz_topic_name",
    "ros_type_name",
    "gz_type_name",
    "direction",
    "publisher_queue",
    "subscriber_queue",
    "lazy",
}
DIRECTIONS = {"BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ"}
#: ros_gz_bridge's mappings (ros_gz_bridge/ros_gz_bridge/mappings.py) for the types the package uses.
GZ_TYPES = {
    "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
    "sensor_msgs/msg/Image": "gz.msgs.Image",
    "sensor_msgs/msg/CameraInfo": "gz.msgs.CameraInfo",
    "geometry_msgs/msg/Twist": "gz.msgs.Twist",
    "nav_msgs/msg/Odometry": "gz.msgs.Odometry",
    "tf2_msgs/msg/TFMessage": "gz.msgs.Pose_V",
}
#: What the graph sends to the car; everything else comes from the simulator.
TO_GAZEBO = {"cmd_vel"}


@pytest.fixture(scope="module")
def entries():
    doc = yaml.safe_load(BRIDGE_CONFIG.read_text())
    assert isinstance(doc, list) and doc, "ros_gz_bridge wants a YAML sequence of entries"
    return doc


def test_every_entry_is_complete_for_ros_gz_bridge(entries):
    for entry in entries:
        assert isinstance(entry, dict)
        assert set(entry) <= KNOWN_KEYS, set(entry) - KNOWN_KEYS
        assert {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"} <= set(entry)
        assert entry["direction"] in DIRECTIONS
        assert GZ_TYPES[entry["ros_type_name"]] == entry["gz_type_name"], entry
        assert entry["gz_topic_name"].startswith("/") and entry["ros_topic_name"].startswith("/")


def test_it_bridges_the_package_topics_with_their_types_and_directions(entries):
    bridged = {e["ros_topic_name"]: (e["ros_type_name"], e["direction"]) for e in entries}
    assert len(bridged) == len(entries), "a ROS topic bridged twice"
    expected = {
        topic: (msg_type, "ROS_TO_GZ" if role in TO_GAZEBO else "GZ_TO_ROS")
        for role, (topic, msg_type) in topics.GAZEBO_TOPICS.items()
    }
    assert bridged == expected


def test_the_package_topics_are_the_behaviormetrics_f1_names():
    assert topics.GAZEBO_TOPICS["camera"][0] == "/F1ROS/cameraL/image_raw"
    assert topics.GAZEBO_TOPICS["cmd_vel"][0] == "/F1ROS/cmd_vel"
    assert topics.GAZEBO_TOPICS["odom"][0] == "/F1ROS/odom"
    # camera_info next to the images, as Gazebo's camera sensor names it by default
    assert topics.CAMERA_INFO_TOPIC.rsplit("/", 1)[0] == topics.CAMERA_TOPIC.rsplit("/", 1)[0]
