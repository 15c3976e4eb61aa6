"""Ports, pids and signals: the operating-system facts the embedded broker relies on.

A broker is a separate JVM process found again through a pid file and a TCP port, so the
node, the cluster and ``dataplatform run`` need the same small, careful answers to "is
this port free?", "is that pid still alive (and not a zombie)?" and "signal it, if it is
still there". Nothing here knows about Kafka; the stream processor's worker pool takes its
parent-death signal from here too.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def runs_with_argument(pid: int, argument: str) -> bool:
    """Whether ``pid``'s command line has ``argument``: a pid file can outlive its process
    and the pid be reused by another program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # not Linux: trust the pid file
    return argument.encode() in cmdline


def send_signal(pid: int, sig: int) -> None:
    """Signal ``pid``; a process that has already gone is not an error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this (child) process if the process that owns it dies
    (tests, `run`), so that nothing it started outlives it: SIGKILL for a server, SIGTERM for
    a stream processor worker, which then stops cleanly. The one home of that signal.

    Meant as a ``preexec_fn``: it runs in the child between fork and exec.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - not Linux
        pass
