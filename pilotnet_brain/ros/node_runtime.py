"""Shared plumbing of the package's ROS 2 nodes: the start-up errors and the `main()` spin loop."""

from __future__ import annotations

import os
import signal
import sys
import threading

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from pilotnet_brain.errors import BackendUnavailable, CircuitError, ConfigError, ImageError, ModelFileError

#: How long DDS teardown may take before the node exits anyway (normally well under 1 s). Below the
#: SIGINT grace of both launchers (`pilotnet-brain launch`: processes.SIGINT_GRACE_S; ros2 launch's
#: default sigterm_timeout: 5 s): a stuck teardown then ends with the node's own exit code instead of
#: a SIGKILL (-9) once signals no longer reach it.
TEARDOWN_TIMEOUT_S = 3.0


#: Exceptions that mean "cannot start as configured": logged as one line, exit code 2.
STARTUP_ERRORS = (
    ConfigError,
    CircuitError,
    ModelFileError,
    ImageError,
    BackendUnavailable,
    ValueError,
    FileNotFoundError,
)


def wall_timer(node, period_s: float, callback):
    """A timer on the steady clock, for a node's bookkeeping (discovery gates, polling, wall time-outs).

    A plain create_timer follows the node's clock, which with use_sim_time stands still while no /clock
    is published - before a simulation starts and after it ends - so such a timer would never fire.
    """
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def make_executor():
    """rclpy's EventsExecutor (C++, Kilted; experimental in rclpy) where it exists and PILOTNET_EXECUTOR is not
    'single': it hands a message to its callback without rebuilding a wait set per spin, which took
    ~0.5 ms of every camera->command round trip; the SingleThreadedExecutor otherwise."""
    if os.environ.get("PILOTNET_EXECUTOR", "events") != "single":
        try:
            from rclpy.experimental import EventsExecutor  # noqa: PLC0415 (optional: newer rclpy only)
        except ImportError:
            pass
        else:
            return EventsExecutor()
    return SingleThreadedExecutor()


def run_node(
    node_name: str,
    make_node,
    done=lambda node: False,
    on_start=None,
    on_stop=None,
    exit_code=lambda node: 0,
    args=None,
) -> int:
    """rclpy.init, build the node, spin it (SingleThreadedExecutor) until rclpy shuts down or `done(node)`.

    A STARTUP_ERRORS exception from `make_node()` is logged as a fatal 'cannot start: ...' under `node_name`,
    exit code 2. `on_start(node)` runs once the node is added to
    the executor; `on_stop(node)` runs before the node is destroyed (whenever it was built).
    Ctrl-C / external shutdown end the spin quietly with exit code 0; otherwise the exit code is
    `exit_code(node)`, taken when the spin ends.
    """
    rclpy.init(args=args)
    node = None
    executor = None
    rc = 0
    try:
        try:
            node = make_node()
        except STARTUP_ERRORS as error:
            rclpy.logging.get_logger(node_name).fatal(f"cannot start: {error}")
            return 2
        executor = make_executor()
        executor.add_node(node)
        if on_start is not None:
            on_start(node)
        while rclpy.ok() and not done(node):
            executor.spin_once(timeout_sec=0.1)
        rc = exit_code(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        _ignore_interrupts()
        # The node's work is on disk by now; DDS teardown has been seen to hang (a participant still
        # negotiating a TCP connection), so it gets TEARDOWN_TIMEOUT_S and then the process exits.
        watchdog = threading.Timer(TEARDOWN_TIMEOUT_S, _exit_after_stuck_teardown, args=(node_name, rc))
        watchdog.daemon = True
        watchdog.start()
        if node is not None:
            if on_stop is not None:
                on_stop(node)
            if executor is not None:
                # Release the executor's hold on the node first: destroying a node an executor still
                # references can block in destroy_when_not_in_use (seen once after a finished run).
                executor.remove_node(node)
                executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        _ignore_interrupts()  # rclpy.shutdown puts back Python's handler, which raises KeyboardInterrupt
        watchdog.cancel()
    return rc


def _ignore_interrupts() -> None:
    """From teardown on, SIGINT/SIGTERM are ignored: the node is exiting already, and a launcher's SIGINT
    landing now (it stops every node once the metrics are written) would turn the exit code into -2."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _exit_after_stuck_teardown(node_name: str, rc: int) -> None:
    print(
        f"[{node_name}] ROS teardown did not finish in {TEARDOWN_TIMEOUT_S:.0f} s; exiting with code {rc}",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(rc)
