"""Test stand-in for ROS 2 cv_bridge (see test/stand_ins/README.md); same names as the upstream package."""

from cv_bridge.boost.cv_bridge_boost import getCvType  # noqa: F401
from cv_bridge.core import CvBridge, CvBridgeError  # noqa: F401
