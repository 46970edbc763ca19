"""Closed-loop simulation: sim_node (embedded simulator on Gazebo's F1 topics) + brain_node + metrics_node.

    ros2 launch pilotnet_brain simulation.launch.py circuit:=montreal direction:=ccw \
        brain_config:=<share>/config/brains/pilotnet_fp32.yaml [clock:=lockstep] [record:=true] [out_dir:=runs/ros]

Without `ros2 launch`, `pilotnet-brain launch simulation ...` (pilotnet_brain/ros/launcher.py) starts the
same executables with the same parameters files; test/test_ros_launch_files.py keeps the two in step.
The graph shuts down when metrics_node has written the run's metrics and exits.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    share = FindPackageShare("pilotnet_brain")
    sim_config = PathJoinSubstitution([share, "config", "simulation.yaml"])
    default_brain = PathJoinSubstitution([share, "config", "brains", "explicit.yaml"])

    circuit = LaunchConfiguration("circuit")
    direction = LaunchConfiguration("direction")
    scale = LaunchConfiguration("scale")
    clock = LaunchConfiguration("clock")
    brain_config = LaunchConfiguration("brain_config")
    record = LaunchConfiguration("record")
    out_dir = LaunchConfiguration("out_dir")
    timeout = LaunchConfiguration("timeout")

    metrics = Node(
        package="pilotnet_brain",
        executable="metrics_node",
        name="metrics_node",
        output="screen",
        parameters=[
            {
                "circuit": circuit,
                "direction": direction,
                "scale": scale,
                "brain_config": brain_config,
                "output_dir": out_dir,
            }
        ],
    )
    brain = Node(
        package="pilotnet_brain",
        executable="brain_node",
        name="brain_node",
        output="screen",
        parameters=[brain_config],
    )
    sim = Node(
        package="pilotnet_brain",
        executable="sim_node",
        name="sim_node",
        output="screen",
        parameters=[
            sim_config,
            {
                "circuit": circuit,
                "direction": direction,
                "scale": scale,
                "clock": clock,
                "timeout": timeout,
                "wait_for_metrics": True,
                # start once metrics_node (and bag_recorder, when recording) listen
                "odom_subscribers": PythonExpression(["2 if '", record, "'.lower() == 'true' else 1"]),
            },
        ],
    )
    recorder = Node(
        package="pilotnet_brain",
        executable="bag_recorder",
        name="bag_recorder",
        output="screen",
        condition=IfCondition(record),
        parameters=[
            {
                "bag_path": PathJoinSubstitution([out_dir, "bag"]),
                "circuit": circuit,
                "direction": direction,
                "scale": scale,
                "clock": clock,
                "brain_config": brain_config,
            }
        ],
    )

    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "circuit", default_value="simple_circuit", description="built-in circuit name or TUM-format CSV path"
            ),
            DeclareLaunchArgument("direction", default_value="ccw", description="ccw | cw"),
            DeclareLaunchArgument("scale", default_value="1.0", description="CSV circuits: scale factor"),
            DeclareLaunchArgument("clock", default_value="lockstep", description="lockstep | realtime"),
            DeclareLaunchArgument(
                "brain_config",
                default_value=default_brain,
                description="brain_node parameters YAML (config/brains/*.yaml)",
            ),
            DeclareLaunchArgument("record", default_value="false", description="record a rosbag2 (bag_recorder)"),
            DeclareLaunchArgument("out_dir", default_value="runs/ros", description="metrics output directory"),
            DeclareLaunchArgument(
                "timeout",
                default_value="0.0",
                description="simulated seconds; 0 = the circuit's BehaviorMetrics time-out",
            ),
            # Best-effort 640x480 frames need FastDDS' LARGE_DATA transports (default ones lose ~90 % at 100 Hz).
            SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
            recorder,
            metrics,
            brain,
            sim,
            RegisterEventHandler(
                OnProcessExit(
                    target_action=metrics,
                    on_exit=[EmitEvent(event=Shutdown(reason="metrics_node wrote the run's metrics"))],
                )
            ),
        ]
    )
