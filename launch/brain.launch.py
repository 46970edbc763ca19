"""The brain alone, for a Gazebo F1 car (BehaviorMetrics / JdeRobot worlds, or gz sim through ros_gz_bridge):
camera in, commands out.

    ros2 launch pilotnet_brain brain.launch.py brain_config:=<share>/config/brains/pilotnet_fp32.yaml \
        use_sim_time:=true [namespace:=car1] [camera_topic:=...] [cmd_vel_topic:=...]

Same as `pilotnet-brain launch brain --brain-config ... --use-sim-time` (pilotnet_brain/ros/launcher.py).
The launch arguments come from pilotnet_brain.config (BRAIN_LAUNCH_ARGUMENTS): camera_topic and
cmd_vel_topic remap the F1 topics (interfaces.py), relative names resolve inside the namespace, and
use_sim_time makes the node's clock (its watchdog) follow Gazebo's /clock.
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from pilotnet_brain import interfaces as topics
from pilotnet_brain.config import BRAIN_LAUNCH_ARGUMENTS, launch_default


def generate_launch_description():
    share = FindPackageShare("pilotnet_brain")
    # brain_config's default is relative to the package's config directory
    arguments = [
        DeclareLaunchArgument(
            a.name,
            default_value=PathJoinSubstitution([share, "config", a.default])
            if a.name == "brain_config"
            else launch_default(a),
            description=a.description(),
        )
        for a in BRAIN_LAUNCH_ARGUMENTS
    ]
    return LaunchDescription(
        [
            *arguments,
            # Fast DDS profile of the graph (config/fastdds.xml): camera frames over shared memory
            SetEnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE", PathJoinSubstitution([share, "config", "fastdds.xml"])
            ),
            Node(
                package="pilotnet_brain",
                executable="brain_node",
                name="brain_node",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                parameters=[
                    LaunchConfiguration("brain_config"),
                    {"use_sim_time": LaunchConfiguration("use_sim_time")},
                ],
                remappings=[
                    (topics.CAMERA_TOPIC, LaunchConfiguration("camera_topic")),
                    (topics.CMD_VEL_TOPIC, LaunchConfiguration("cmd_vel_topic")),
                ],
            ),
        ]
    )
