"""rosbag2 bags of driving runs, without rclpy: ``writer`` (BagWriter, side file), ``reader`` (read_bag, BagRun),
``score`` (the RunRecord and metrics of a bag, the ``analyze`` command)."""
