"""Helpers of the ROS tests: spin until a condition, call a service, run node processes."""

from __future__ import annotations

import os
import signal
import subprocess
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


def call(node, srv_type, name, request, timeout=60.0):
    import rclpy

    cli = node.create_client(srv_type, name)
    assert cli.wait_for_service(timeout_sec=timeout), f"service {name} not available"
    fut = cli.call_async(request)
    rclpy.spin_until_future_complete(node, fut, timeout_sec=timeout)
    assert fut.done(), f"{name} did not answer"
    return fut.result()


def start(specs, env):
    """Start node specs (robolearn.ros_nodes.graph) as processes."""
    from robolearn.ros_nodes.graph import command

    return [subprocess.Popen(command(s), env={**env, "MUJOCO_GL": "egl"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for s in specs]


def stop(procs) -> list[str]:
    """Stop the processes; return their output (shown when a test fails)."""
    for p in procs:
        p.send_signal(signal.SIGINT)
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        outs.append(out.decode(errors="replace") if out else "")
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
            print(f"---- {spec.name} ----\n{out[-3000:]}")
