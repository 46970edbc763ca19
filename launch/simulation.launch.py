"""Closed-loop simulation: sim_node (embedded simulator on Gazebo's F1 topics) + brain_node + metrics_node.

    ros2 launch pilotnet_brain simulation.launch.py circuit:=montreal direction:=ccw \
        brain_config:=<share>/config/brains/pilotnet_fp32.yaml [clock:=lockstep] [record:=true] [out_dir:=runs/ros] \
        [conditions:=lighting=0.5,noise=moderate] [seed:=0] [use_sim_time:=true]

Without `ros2 launch`, `pilotnet-brain launch simulation ...` (pilotnet_brain/ros/launcher.py) starts the
same executables with the same parameters files; test/ros/test_launch_files.py keeps the two in step.
The launch arguments (names, defaults, descriptions) come from pilotnet_brain.config, the nodes' schemas.
The graph shuts down when metrics_node has written the run's metrics and exits. use_sim_time:=true gives
every node sim_node's /clock as its clock (as with Gazebo).
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from pilotnet_brain.config import SIMULATION_LAUNCH_ARGUMENTS, launch_default


def _shutdown_if_recorder_failed(event, _context):
    if event.returncode != 0:
        reason = f"bag_recorder exited with code {event.returncode}: the run is not recorded completely"
        return [EmitEvent(event=Shutdown(reason=reason))]
    return None


def generate_launch_description():
    share = FindPackageShare("pilotnet_brain")
    sim_config = PathJoinSubstitution([share, "config", "simulation.yaml"])
    # brain_config's default is relative to the package's config directory
    arguments = [
        DeclareLaunchArgument(
            a.name,
            default_value=PathJoinSubstitution([share, "config", a.default])
            if a.name == "brain_config"
            else launch_default(a),
            description=a.description(),
        )
        for a in SIMULATION_LAUNCH_ARGUMENTS
    ]

    circuit = LaunchConfiguration("circuit")
    direction = LaunchConfiguration("direction")
    scale = LaunchConfiguration("scale")
    clock = LaunchConfiguration("clock")
    brain_config = LaunchConfiguration("brain_config")
    record = LaunchConfiguration("record")
    out_dir = LaunchConfiguration("out_dir")
    timeout = LaunchConfiguration("timeout")
    conditions = LaunchConfiguration("conditions")  # sim_node's, and metrics_node's label of the run
    seed = LaunchConfiguration("seed")
    use_sim_time = LaunchConfiguration("use_sim_time")  # ROS's own parameter, given to every node

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
                "conditions": conditions,
                "brain_config": brain_config,
                "output_dir": out_dir,
                "use_sim_time": use_sim_time,
            }
        ],
    )
    brain = Node(
        package="pilotnet_brain",
        executable="brain_node",
        name="brain_node",
        output="screen",
        parameters=[brain_config, {"use_sim_time": use_sim_time}],
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
                "conditions": conditions,
                "seed": seed,
                "wait_for_metrics": True,
                # start once metrics_node (and bag_recorder, when recording) listen
                "odom_subscribers": PythonExpression(["2 if '", record, "'.lower() == 'true' else 1"]),
                "camera_reliable": record,  # recording: the recorder gets every frame
                "use_sim_time": use_sim_time,
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
                "use_sim_time": use_sim_time,
            }
        ],
    )

    return LaunchDescription(
        [
            *arguments,
            # The graph's Fast DDS profile: 640x480 frames over shared memory, prompt UDP discovery
            # (the built-in DEFAULT transports lose the frames, LARGE_DATA's discovery stalls).
            SetEnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE", PathJoinSubstitution([share, "config", "fastdds.xml"])
            ),
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
            # A recorder that fails (an existing bag directory, a crash) ends the run at once, saying so.
            RegisterEventHandler(OnProcessExit(target_action=recorder, on_exit=_shutdown_if_recorder_failed)),
        ]
    )
