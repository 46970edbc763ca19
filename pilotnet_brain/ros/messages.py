"""Message helpers that need the ROS message packages (the layouts themselves live in interfaces.py)."""

from __future__ import annotations

from std_msgs.msg import MultiArrayDimension, MultiArrayLayout


def stats_layout(fields):
    """A MultiArrayLayout naming the fields (dim[0].label = 'a,b,c'), built once per publisher."""
    return MultiArrayLayout(
        dim=[MultiArrayDimension(label=",".join(fields), size=len(fields), stride=len(fields))], data_offset=0
    )
