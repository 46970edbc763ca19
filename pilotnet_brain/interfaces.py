"""Topic names, message types and message layouts of the pilotnet_brain ROS graph, in one place (no rclpy).

The names are those of BehaviorMetrics' F1 Gazebo worlds, so `brain_node` drives the real Gazebo car
unchanged and `sim_node` is a drop-in stand-in for Gazebo.

| name | type | publisher -> subscribers |
| --- | --- | --- |
| /F1ROS/cameraL/image_raw | sensor_msgs/Image (rgb8, 640x480, stamp = sim time) | sim_node / Gazebo -> brain_node |
| /F1ROS/cmd_vel | geometry_msgs/Twist (linear.x = v m/s, angular.z = w rad/s) | brain_node -> sim_node, metrics_node |
| /F1ROS/odom | nav_msgs/Odometry (every physics step) | sim_node -> metrics_node |
| /F1ROS/cameraL/camera_info | sensor_msgs/CameraInfo (640x480 pinhole, 60 deg HFOV) | sim_node / Gazebo -> tools |
| /clock | rosgraph_msgs/Clock | sim_node / Gazebo -> every node with use_sim_time |
| /tf | tf2_msgs/TFMessage (odom -> base_link; needs tf2_msgs) | sim_node / Gazebo -> RViz, Foxglove |
| /brain_node/stats (~/stats) | std_msgs/Float64MultiArray, layout BRAIN_STATS_FIELDS | brain_node -> sim_node (lockstep), metrics_node |
| /F1ROS/episode_status | std_msgs/String, one of EPISODE_STATES (transient local) | sim_node -> metrics_node, launcher |
| /sim_node/stats | std_msgs/Float64MultiArray, layout SIM_STATS_FIELDS | sim_node -> metrics_node |
"""

from __future__ import annotations

CAMERA_TOPIC = "/F1ROS/cameraL/image_raw"
#: The camera's intrinsics, next to its images (as Gazebo's camera plugins publish them).
CAMERA_INFO_TOPIC = "/F1ROS/cameraL/camera_info"
CMD_VEL_TOPIC = "/F1ROS/cmd_vel"
ODOM_TOPIC = "/F1ROS/odom"
CLOCK_TOPIC = "/clock"
#: odom -> base_link (tf2_msgs/TFMessage), as a Gazebo car's odometry plugin broadcasts it.
TF_TOPIC = "/tf"
#: Relative to the brain node: resolves to /brain_node/stats.
BRAIN_STATS_TOPIC = "~/stats"
BRAIN_STATS_TOPIC_RESOLVED = "/brain_node/stats"
EPISODE_STATUS_TOPIC = "/F1ROS/episode_status"
SIM_STATS_TOPIC = "~/stats"
SIM_STATS_TOPIC_RESOLVED = "/sim_node/stats"

CAMERA_FRAME_ID = "F1ROS/cameraL"
ODOM_FRAME_ID = "odom"
BASE_FRAME_ID = "base_link"

#: std_msgs/Float64MultiArray published by brain_node once per processed image, in this order:
#: frame_stamp_s  header.stamp of the camera image the command answers (sim time, s)
#: inference_ms   forward pass (pilotnet) / whole brain step (explicit, which has no separate forward pass)
#: iteration_ms   image callback entered -> command published (decode + brain + publish; no waiting)
#: period_ms      time since the previous image callback started (0 for the first)
#: overhead_ms    iteration_ms - inference_ms: what the node adds (decode, preprocess, clamp, publish)
BRAIN_STATS_FIELDS = ("frame_stamp_s", "inference_ms", "iteration_ms", "period_ms", "overhead_ms")

#: std_msgs/Float64MultiArray published by sim_node about once per simulated second and at the end:
SIM_STATS_FIELDS = (
    "sim_time_s",
    "frame_count",
    "wall_time_s",
    "off_track_events",
    "latency_mean_ms",
    "latency_max_ms",
    "lockstep_timeouts",
    "latency_p50_ms",
    "latency_p99_ms",
)

#: Values of /F1ROS/episode_status. Anything but RUNNING/WAITING ends the run.
WAITING, RUNNING, LAP_COMPLETED, OFF_TRACK, TIMEOUT = "waiting", "running", "lap_completed", "off_track", "timeout"
EPISODE_STATES = (WAITING, RUNNING, LAP_COMPLETED, OFF_TRACK, TIMEOUT)
END_STATES = (LAP_COMPLETED, OFF_TRACK, TIMEOUT)

#: Role -> topic, for recorders and readers of bags (the same names as above).
DEFAULT_TOPICS = {
    "camera": CAMERA_TOPIC,
    "cmd_vel": CMD_VEL_TOPIC,
    "odom": ODOM_TOPIC,
    "clock": CLOCK_TOPIC,
    "stats": BRAIN_STATS_TOPIC_RESOLVED,
    "status": EPISODE_STATUS_TOPIC,
    "sim_stats": SIM_STATS_TOPIC_RESOLVED,
}

#: Role -> ROS 2 message type (rosbags spelling ``pkg/msg/Type``).  Stats and status types are only
#: defaults: the recorder takes the type a publisher advertises when it differs.
DEFAULT_TYPES = {
    "camera": "sensor_msgs/msg/Image",
    "cmd_vel": "geometry_msgs/msg/Twist",
    "odom": "nav_msgs/msg/Odometry",
    "clock": "rosgraph_msgs/msg/Clock",
    "stats": "std_msgs/msg/Float64MultiArray",
    "status": "std_msgs/msg/String",
    "sim_stats": "std_msgs/msg/Float64MultiArray",
}

#: What a Gazebo car (or sim_node in its place) exchanges with the graph: role -> (topic, ROS 2 type).
#: config/ros_gz_bridge.yaml bridges exactly these from a Gazebo (gz sim) world.
GAZEBO_TOPICS = {
    "clock": (CLOCK_TOPIC, DEFAULT_TYPES["clock"]),
    "camera": (CAMERA_TOPIC, DEFAULT_TYPES["camera"]),
    "camera_info": (CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo"),
    "cmd_vel": (CMD_VEL_TOPIC, DEFAULT_TYPES["cmd_vel"]),
    "odom": (ODOM_TOPIC, DEFAULT_TYPES["odom"]),
    "tf": (TF_TOPIC, "tf2_msgs/msg/TFMessage"),
}

#: The graph's Fast DDS participant profile (config/fastdds.xml), which every node loads through the
#: environment variable FASTDDS_PROFILE_VARIABLE: 640x480 frames over shared memory (the built-in
#: DEFAULT transports lose ~98 % of them at 100 Hz) and UDP discovery re-announced every 0.5 s (the
#: built-in LARGE_DATA discovers over TCP and leaves a late participant unseen for 3 s or more).
FASTDDS_PROFILE_FILE = "fastdds.xml"
FASTDDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
# How long metrics_node and bag_recorder wait for the brain's topics to match before subscribing to
# odometry anyway (a safety net: sim_node waits up to 60 s for its subscribers).
DISCOVERY_GATE_TIMEOUT_S = 30.0


def stats_dict(data, fields) -> dict:
    """Float64MultiArray.data -> {field: value} (extra trailing values are ignored)."""
    return {name: float(value) for name, value in zip(fields, data)}
