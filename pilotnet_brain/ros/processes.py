"""The graph's processes: each in its own session, dying with the launcher, its output copied line by line
to its log file and (for `pilotnet-brain launch`) to the terminal; SIGINT, SIGTERM, SIGKILL teardown."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

#: How long the nodes get to exit after SIGINT before SIGTERM (node_runtime.TEARDOWN_TIMEOUT_S is below it).
SIGINT_GRACE_S = 5.0


def _die_with_parent():
    """In the child before exec: get SIGTERM when the launcher dies (Linux), so nothing is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ProcessGroup:
    """Started processes, each in its own session (so Ctrl-C reaches only the launcher).

    A reader thread per process copies its output (stdout and stderr, merged) line by line to its log file
    and, when `echo` is a stream (the launcher's terminal), there too, each line prefixed `[<name>] `.
    """

    def __init__(self, env: dict, echo=None):
        self.env = env
        self.echo = echo
        self._echo_lock = threading.Lock()
        self.procs: list[tuple] = []  # (ProcessSpec, Popen, reader thread | None)

    def start(self, spec) -> subprocess.Popen:
        log = None
        if spec.log is not None:
            spec.log.parent.mkdir(parents=True, exist_ok=True)
            log = open(spec.log, "wb")
        wanted = log is not None or self.echo is not None
        proc = subprocess.Popen(
            spec.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if wanted else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        reader = None
        if wanted:
            reader = threading.Thread(
                target=self._copy_output, args=(spec.name, proc.stdout, log), name=f"output-{spec.name}", daemon=True
            )
            reader.start()
        self.procs.append((spec, proc, reader))
        return proc

    def _copy_output(self, name: str, pipe, log) -> None:
        """Until the process closes its output: each line to the log file (flushed) and the terminal."""
        prefix = f"[{name}] "
        try:
            for line in iter(pipe.readline, b""):
                if log is not None:
                    log.write(line)
                    log.flush()  # the launcher quotes the tail of a failed node's log
                if self.echo is not None:
                    text = prefix + line.decode("utf-8", errors="replace").rstrip("\r\n") + "\n"
                    with self._echo_lock:
                        try:
                            self.echo.write(text)
                            self.echo.flush()
                        except (OSError, ValueError):  # terminal gone: keep logging to the file
                            self.echo = None
        finally:
            pipe.close()
            if log is not None:
                log.close()

    def wait_output(self, name: str, timeout: float = 5.0) -> None:
        """Wait until everything the named process wrote has reached its log (it has exited)."""
        for spec, _, reader in self.procs:
            if spec.name == name and reader is not None:
                reader.join(timeout)

    def _signal(self, proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def shutdown(self, sigint_timeout: float = SIGINT_GRACE_S, sigterm_timeout: float = 3.0) -> dict:
        """SIGINT all, then SIGTERM, then SIGKILL the survivors; returns {name: exit code}."""
        for sig, wait in ((signal.SIGINT, sigint_timeout), (signal.SIGTERM, sigterm_timeout), (signal.SIGKILL, 5.0)):
            alive = [p for _, p, _ in self.procs if p.poll() is None]
            if not alive:
                break
            for p in alive:
                self._signal(p, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.05)
        for _, p, _ in self.procs:  # whole process groups: anything a node forked goes too
            if p.poll() is not None:
                self._signal(p, signal.SIGKILL)
        codes = {}
        for spec, p, _ in self.procs:
            codes[spec.name] = p.wait()
        for spec, _, _ in self.procs:  # the last lines of every node reach its log and the terminal
            self.wait_output(spec.name)
        return codes


def announce(lines, echo) -> None:
    """The launcher's own lines on the terminal, prefixed [launch] like the nodes' [<name>]."""
    if echo is not None:
        echo.write("".join(f"[launch] {line}\n" for line in lines))
        echo.flush()


def tail_log(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in text)


class SigtermAsInterrupt:
    """While active (main thread only), SIGTERM to the launcher raises KeyboardInterrupt."""

    def __enter__(self):
        self.old = None
        if threading_is_main():
            self.old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def threading_is_main() -> bool:

    return threading.current_thread() is threading.main_thread()
