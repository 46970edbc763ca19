"""The brain alone, for a real Gazebo F1 world (BehaviorMetrics): camera in, /F1ROS/cmd_vel out.

    ros2 launch pilotnet_brain brain.launch.py brain_config:=<share>/config/brains/pilotnet_fp32.yaml

Same as `pilotnet-brain launch brain --brain-config ...` (pilotnet_brain/ros/launcher.py). The launch
argument comes from pilotnet_brain.config (BRAIN_LAUNCH_ARGUMENTS).
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from pilotnet_brain.config import BRAIN_LAUNCH_ARGUMENTS


def generate_launch_description():
    share = FindPackageShare("pilotnet_brain")
    # brain_config's default is relative to the package's config directory
    arguments = [
        DeclareLaunchArgument(
            a.name, default_value=PathJoinSubstitution([share, "config", a.default]), description=a.description()
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
                output="screen",
                parameters=[LaunchConfiguration("brain_config")],
            ),
        ]
    )
