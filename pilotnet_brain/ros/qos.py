"""The QoS profiles of the package's topics, in one place (publishers and subscribers must agree)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

#: Commands, stats, odometry: every message counts (metrics, lock-step matching), so reliable with a deep queue.
RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

#: The episode status: the latest state, delivered to late joiners too (transient local).
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

#: Camera images and camera_info out (sim_node): ROS's sensor-data profile (best effort, depth 5).
SENSOR_DATA = qos_profile_sensor_data

#: Camera images when they are recorded (sim_node's camera_reliable): reliable, so a reliable subscriber -
#: bag_recorder - gets every frame; best-effort subscribers (brain_node) match it all the same.
RELIABLE_CAMERA = QoSProfile(
    depth=SENSOR_DATA.depth,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.VOLATILE,
)

#: The brain's camera subscription: only the newest frame (depth 1, best effort). A control loop must not
#: work through a queue of stale frames; lock-step loses nothing, as sim_node sends a frame only once the
#: previous one is answered. Matches best-effort and reliable publishers (Gazebo bridges publish reliable).
NEWEST_FRAME = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.VOLATILE,
)

#: /tf as tf2_ros's TransformBroadcaster publishes it (reliable, depth 100).
TF = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
