"""Drive a NeRF bridge worker process (:mod:`robolearn.nerf.worker`) from any environment.

    client = NerfWorkerClient(NerfBridgeConfig(image_width=64, image_height=64),
                              python=".venv-nerf/bin/python")
    client.send_frame(f.rgb, f.c2w, f.intrinsics, f.timestamp)  # returns at once; trains between
    client.request("stats")                # {"accepted", "rejected", "step", "loss", "eval", ...}
    client.request("render", c2w=..., intrinsics=[fx, fy, cx, cy, w, h])  # {"rgb", "depth"}
    client.close()

This module imports neither nerfstudio nor torch: the ROS ``nerf_node`` runs it in the
main environment while the worker runs wherever nerfstudio is installed.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from robolearn.nerf.worker import read_message, write_message


class NerfWorkerError(RuntimeError):
    """The worker could not start, died, or answered a request with an error."""


class NerfWorkerTimeout(NerfWorkerError):
    """The worker is alive but did not answer in time (busy: a long training step or
    evaluation on a loaded machine); a later request may well succeed."""


def default_nerf_python() -> str:
    """The interpreter with nerfstudio: ``$ROBOLEARN_NERF_PYTHON``, else ``.venv-nerf`` of
    the checkout this package runs from, else the current interpreter."""
    env = os.environ.get("ROBOLEARN_NERF_PYTHON", "")
    if env:
        return env
    repo = Path(__file__).resolve().parents[2]
    cand = repo / ".venv-nerf" / "bin" / "python"
    return str(cand) if cand.exists() else sys.executable


class NerfWorkerClient:
    """One worker process; thread-safe ``send_frame`` / ``request``."""

    def __init__(self, config, python: str = "", work_dir: str | None = None,
                 steps_per_cycle: int = 1, eval_every_steps: int = 0,
                 start_timeout: float = 180.0, stderr=None):
        self.python = python or default_nerf_python()
        if not Path(self.python).exists() and os.sep in self.python:
            raise NerfWorkerError(f"no Python interpreter at {self.python!r}: set nerf_python "
                                  "(or ROBOLEARN_NERF_PYTHON) to the environment that has "
                                  "nerfstudio (`make nerf-venv` builds .venv-nerf)")
        self.proc = subprocess.Popen([self.python, "-m", "robolearn.nerf.worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, bufsize=0)
        self._write_lock = threading.Lock()  # whole messages on the pipe
        self._pending_lock = threading.Lock()  # request id -> Future
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._ready: Future = Future()
        self.dead_reason = ""
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        write_message(self.proc.stdin, {"op": "init", "config": cfg, "work_dir": work_dir,
                                        "steps_per_cycle": steps_per_cycle,
                                        "eval_every_steps": eval_every_steps}, self._write_lock)
        threading.Thread(target=self._read, name="nerf_worker_reader", daemon=True).start()
        try:
            ready = self._ready.result(timeout=start_timeout)
        except TimeoutError:
            self.kill()
            raise NerfWorkerError(f"the NeRF worker ({self.python}) did not start within "
                                  f"{start_timeout:.0f} s") from None
        if not ready.get("ok"):
            self.kill()
            raise NerfWorkerError(f"the NeRF worker ({self.python}) failed to start: "
                                  f"{ready.get('error') or self.dead_reason}")
        self.device = ready.get("device", "")

    def _read(self) -> None:
        while True:
            try:
                msg = read_message(self.proc.stdout)
            except Exception as e:  # noqa: BLE001 - a torn pipe is a dead worker
                msg, self.dead_reason = None, str(e)
            if msg is None:
                code = self.proc.wait()
                self.dead_reason = self.dead_reason or (
                    f"the NeRF worker exited with status {code} (is nerfstudio installed for "
                    f"{self.python}?)")
                err = NerfWorkerError(self.dead_reason)
                if not self._ready.done():
                    self._ready.set_result({"ok": False, "error": self.dead_reason})
                with self._pending_lock:
                    pending, self._pending = self._pending, {}
                for f in pending.values():
                    f.set_exception(err)
                return
            if msg.get("op") == "ready" and not self._ready.done():
                self._ready.set_result(msg)
                continue
            with self._pending_lock:
                fut = self._pending.pop(msg.get("id"), None)
            if fut is not None:
                fut.set_result(msg)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_frame(self, rgb: np.ndarray, c2w: np.ndarray, intrinsics, t: float,
                   depth: np.ndarray | None = None) -> None:
        """Queue one posed frame (OpenGL camera-to-world, metres; intrinsics as
        ``Intrinsics`` or [fx, fy, cx, cy, w, h])."""
        if not self.alive:
            raise NerfWorkerError(self.dead_reason or "the NeRF worker is not running")
        k = intrinsics
        if hasattr(k, "fx"):
            k = [k.fx, k.fy, k.cx, k.cy, k.width, k.height]
        msg = {"op": "frame", "rgb": np.ascontiguousarray(rgb), "c2w": np.asarray(c2w, float),
               "intrinsics": None if k is None else [float(v) for v in k], "t": float(t),
               "depth": None if depth is None else np.ascontiguousarray(depth, np.float32)}
        try:
            write_message(self.proc.stdin, msg, self._write_lock)
        except (BrokenPipeError, OSError) as e:
            raise NerfWorkerError(self.dead_reason or f"the NeRF worker's pipe broke: {e}") from e

    def request(self, op: str, timeout: float = 120.0, **kw) -> dict:
        """Send a request and wait for its reply; raises :class:`NerfWorkerError` on failure."""
        fut: Future = Future()
        with self._pending_lock:
            rid = next(self._ids)
            self._pending[rid] = fut
        if not self.alive:
            raise NerfWorkerError(self.dead_reason or "the NeRF worker is not running")
        try:
            write_message(self.proc.stdin, dict(kw, op=op, id=rid), self._write_lock)
        except (BrokenPipeError, OSError) as e:
            raise NerfWorkerError(self.dead_reason or f"the NeRF worker's pipe broke: {e}") from e
        try:
            reply = fut.result(timeout=timeout)
        except TimeoutError:
            with self._pending_lock:
                self._pending.pop(rid, None)
            raise NerfWorkerTimeout(f"the NeRF worker did not answer {op!r} within "
                                    f"{timeout:.0f} s") from None
        if not reply.get("ok", False):
            raise NerfWorkerError(f"{op} failed: {reply.get('error')}")
        return reply

    def close(self, timeout: float = 30.0) -> None:
        if self.alive:
            try:
                self.request("close", timeout=timeout)
            except NerfWorkerError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait()
