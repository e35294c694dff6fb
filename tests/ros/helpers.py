"""Helpers of the ROS tests: spin until a condition, call a service, run node processes."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager


def spin_until(node, cond, timeout=60.0):
    import rclpy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if cond():
            return True
    return False


def call(node, srv_type, name, request, timeout=60.0, log=None):
    """Call a service and return its response. ``log``: a process from :func:`start` whose
    output tail goes into the failure message."""
    import rclpy

    cli = node.create_client(srv_type, name)
    assert cli.wait_for_service(timeout_sec=timeout), f"service {name} not available"
    fut = cli.call_async(request)
    rclpy.spin_until_future_complete(node, fut, timeout_sec=timeout)
    if not fut.done():
        detail = f"; the server's output ends with:\n{tail(log)}" if log is not None else ""
        raise AssertionError(f"{name} did not answer within {timeout:.0f} s{detail}")
    return fut.result()


def tail(proc, n: int = 3000) -> str:
    """The last ``n`` bytes a running :func:`start` process wrote, read without moving the
    file offset that the process shares (pread)."""
    fd = proc.log.fileno()
    size = os.fstat(fd).st_size
    return os.pread(fd, n, max(0, size - n)).decode(errors="replace")


def start(specs, env):
    """Start node specs (robolearn.ros_nodes.graph) as processes.

    Their output goes to unnamed files, not pipes: a pipe that nobody reads until the end
    fills after 64 KiB, and a node (or its NeRF worker, which shares the node's stderr) then
    blocks in its next log line, a hang that only shows on a slow, chatty run."""
    from robolearn.ros_nodes.graph import command

    procs = []
    for s in specs:
        log = tempfile.TemporaryFile()
        p = subprocess.Popen(command(s), env={**env, "MUJOCO_GL": "egl"},
                             stdout=log, stderr=subprocess.STDOUT)
        p.log = log
        procs.append(p)
    return procs


def stop(procs) -> list[str]:
    """Stop the processes; return their output (shown when a test fails)."""
    for p in procs:
        p.send_signal(signal.SIGINT)
    outs = []
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.log.seek(0)
        outs.append(p.log.read().decode(errors="replace"))
        p.log.close()
    return outs


@contextmanager
def running(specs, env, ns_prefix: str, probe: str):
    """Start ``specs`` in a private namespace, with rclpy and a probe node in this process.

    Yields ``(probe node, namespace, processes)``; on exit everything stops and each node's
    output is printed (pytest shows it when a test failed).
    """
    import rclpy

    ns = f"{ns_prefix}_{os.getpid()}"  # isolates topics even if a domain id collides
    for s in specs:
        s.namespace = ns
    procs = start(specs, env)
    inited = not rclpy.ok()
    if inited:
        rclpy.init()
    node = rclpy.create_node(probe, namespace=ns)
    try:
        yield node, ns, procs
    finally:
        node.destroy_node()
        if inited:
            rclpy.try_shutdown()
        for spec, out in zip(specs, stop(procs)):
            print(f"---- {spec.name} ({len(out)} characters, the last 3000) ----\n{out[-3000:]}")
