"""pilotnet_brain: PilotNet brains for end-to-end driving, in the style of JdeRobot BehaviorMetrics.

The core (circuits, simulator, camera, brains, metrics) is pure Python and knows nothing of ROS;
the ROS 2 nodes are thin shells over it.
"""

__version__ = "0.1.0"
