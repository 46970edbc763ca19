"""The brain alone, for a real Gazebo F1 world (BehaviorMetrics): camera in, /F1ROS/cmd_vel out.

    ros2 launch pilotnet_brain brain.launch.py brain_config:=<share>/config/brains/pilotnet_fp32.yaml

Same as `pilotnet-brain launch brain --brain-config ...` (pilotnet_brain/ros/launcher.py).
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    default_brain = PathJoinSubstitution([FindPackageShare("pilotnet_brain"), "config", "brains", "explicit.yaml"])
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "brain_config",
                default_value=default_brain,
                description="brain_node parameters YAML (config/brains/*.yaml)",
            ),
            SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
            Node(
                package="pilotnet_brain",
                executable="brain_node",
                name="brain_node",
                output="screen",
                parameters=[LaunchConfiguration("brain_config")],
            ),
        ]
    )
