"""ROS 2 layer of pilotnet_brain: nodes (brain, embedded simulator, metrics), image conversion, launcher.

Everything ROS-specific lives here; the core package knows nothing of ROS. Modules that need rclpy import
it lazily (inside functions / node classes) so `topics`, `image_conversion` (numpy path), the metrics
hook and the launcher's pure helpers import without ROS installed.
"""
