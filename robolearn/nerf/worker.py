"""The NeRF bridge as a worker process: posed frames in over a pipe, training in between,
renders / stats / checkpoints on request.

Why a process: nerfstudio lives in its own environment (its ``nuscenes-devkit`` pins
numpy<2, see the README), and even where it shares one, a NeRF training step is seconds of
CPU that must never block a ROS executor.  The ROS ``nerf_node`` (or any program) talks to
it through :class:`robolearn.nerf.client.NerfWorkerClient`::

    python -m robolearn.nerf.worker        # speaks length-prefixed msgpack on stdin/stdout

Messages (maps; arrays in the openpi wire format of :mod:`robolearn.serving.wire`):

- ``{"op": "frame", "rgb", "c2w" (OpenGL, world m), "intrinsics" [fx, fy, cx, cy, w, h],
  "t", "depth"?}``: queued and ingested between training steps; no reply.
- ``{"op": "stats" | "render" | "evaluate" | "save" | "close", "id", ...}``: answered with
  ``{"id", "ok", ...}`` (``ok: false`` with ``error`` when it failed). ``stats`` is answered
  at once by the reading thread; the others between training steps.

The first message must be ``{"op": "init", "config": NerfBridgeConfig as a map,
"work_dir"}``; the worker answers ``{"op": "ready"}`` once nerfstudio is set up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import struct
import sys
import threading
import time
from typing import Any, BinaryIO

import numpy as np

log = logging.getLogger("robolearn.nerf.worker")

_LEN = struct.Struct(">I")


def write_message(stream: BinaryIO, obj: Any, lock: threading.Lock | None = None) -> None:
    from robolearn.serving import wire

    data = wire.packb(obj)
    with lock or contextlib.nullcontext():  # frames from several threads must not interleave
        stream.write(_LEN.pack(len(data)) + data)
        stream.flush()


def read_message(stream: BinaryIO) -> Any | None:
    """The next message, or None at end of stream."""
    from robolearn.serving import wire

    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        return None
    return wire.unpackb(data)


def _frame(msg: dict):
    from robolearn.nerf.frames import Frame, Intrinsics

    k = msg.get("intrinsics")
    intr = None
    if k is not None and len(k) == 6:
        intr = Intrinsics(float(k[0]), float(k[1]), float(k[2]), float(k[3]), int(k[4]),
                          int(k[5]))
    return Frame(rgb=np.asarray(msg["rgb"]), c2w=np.asarray(msg["c2w"], dtype=np.float64),
                 intrinsics=intr, timestamp=float(msg.get("t", 0.0)),
                 depth=None if msg.get("depth") is None else np.asarray(msg["depth"]))


class Worker:
    """Owns one :class:`~robolearn.nerf.bridge.NerfBridge`; see the module docstring."""

    def __init__(self, bridge, out: BinaryIO, steps_per_cycle: int = 1,
                 eval_every_steps: int = 0):
        self.bridge, self.out = bridge, out
        self.steps_per_cycle = steps_per_cycle
        self.eval_every_steps = eval_every_steps
        self.inbox: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.n_frames_in = 0
        self.last_loss: dict = {}
        self.last_eval: dict = {}
        self.last_eval_step = 0
        self.started = time.monotonic()

    def reader(self, stream: BinaryIO) -> None:
        while True:
            msg = read_message(stream)
            if isinstance(msg, dict) and msg.get("op") == "stats":
                # counters only: answered here at once, not after the current training
                # step or evaluation (which can take minutes on a loaded CPU)
                write_message(self.out, {"id": msg.get("id"), "ok": True, **self.stats()},
                              self.lock)
                continue
            self.inbox.put(msg)
            if msg is None:
                return

    def stats(self) -> dict:
        b = self.bridge
        return {"frames_in": self.n_frames_in, "accepted": b.n_accepted, "rejected": b.n_rejected,
                "last_rejection": b.last_rejection or "", "train_frames": b.n_train_frames,
                "eval_frames": len(b.eval_frames), "step": b.step, "loss": self.last_loss,
                "eval": self.last_eval, "eval_step": self.last_eval_step,
                "train_seconds": b.train_seconds, "data_seconds": b.data_seconds,
                "uptime": time.monotonic() - self.started}

    def handle(self, msg: dict) -> bool:
        """Process one message; False when the worker should stop."""
        op = msg.get("op")
        if op == "frame":
            self.n_frames_in += 1
            try:
                self.bridge.add_frame(_frame(msg))
            except (KeyError, ValueError, TypeError) as e:  # malformed message, not a bad frame
                self.bridge.n_rejected += 1
                self.bridge.last_rejection = f"malformed frame message: {e}"
            return True
        reply: dict = {"id": msg.get("id"), "ok": True}
        try:
            if op == "render":
                from robolearn.nerf.frames import Intrinsics

                k = msg["intrinsics"]
                out = self.bridge.render(np.asarray(msg["c2w"], dtype=np.float64),
                                         Intrinsics(*[float(v) for v in k[:4]], int(k[4]),
                                                    int(k[5])))
                reply.update(rgb=(np.clip(out["rgb"], 0, 1) * 255 + 0.5).astype(np.uint8),
                             depth=out["depth"].astype(np.float32), step=self.bridge.step)
            elif op == "evaluate":
                self.last_eval, self.last_eval_step = self.bridge.evaluate(), self.bridge.step
                reply.update(eval=self.last_eval, step=self.bridge.step)
            elif op == "save":
                reply.update(path=str(self.bridge.save(msg["path"])), step=self.bridge.step)
            elif op == "close":
                write_message(self.out, reply, self.lock)
                return False
            else:
                reply.update(ok=False, error=f"unknown op {op!r}")
        except Exception as e:  # noqa: BLE001 - the caller gets the reason, training goes on
            reply.update(ok=False, error=f"{type(e).__name__}: {e}")
        write_message(self.out, reply, self.lock)
        return True

    def run(self) -> None:
        while True:
            # drain everything that arrived; block only while there is nothing to train on
            block = self.bridge.n_train_frames == 0
            while True:
                try:
                    msg = self.inbox.get(block=block, timeout=0.5 if block else None)
                except queue.Empty:
                    break
                if msg is None or not self.handle(msg):
                    return
                block = False
            if self.bridge.n_train_frames:
                self.last_loss = self.bridge.train(self.steps_per_cycle)
                s = self.bridge.step
                if (self.eval_every_steps and self.bridge.eval_frames
                        and s - self.last_eval_step >= self.eval_every_steps):
                    self.last_eval, self.last_eval_step = self.bridge.evaluate(), s


def main() -> int:
    logging.basicConfig(level=os.environ.get("ROBOLEARN_NERF_LOG", "WARNING"),
                        stream=sys.stderr, format="nerf-worker %(levelname)s %(message)s")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but protocol messages may reach the pipe
    init = read_message(stdin)
    if not init or init.get("op") != "init":
        print("nerf worker: the first message must be {'op': 'init', ...}", file=sys.stderr)
        return 2
    try:
        from robolearn.nerf.bridge import NerfBridge
        from robolearn.nerf.config import NerfBridgeConfig

        bridge = NerfBridge(NerfBridgeConfig.from_dict(init.get("config", {})),
                            work_dir=init.get("work_dir"))
    except Exception as e:  # noqa: BLE001 - tell the parent why, then exit
        write_message(stdout, {"op": "ready", "ok": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    worker = Worker(bridge, stdout, int(init.get("steps_per_cycle", 1)),
                    int(init.get("eval_every_steps", 0)))
    threading.Thread(target=worker.reader, args=(stdin,), daemon=True).start()
    write_message(stdout, {"op": "ready", "ok": True, "device": str(bridge.device)}, worker.lock)
    worker.run()
    bridge.close()
    sys.stderr.flush()
    # the reader thread may sit in a blocking stdin read; a normal interpreter shutdown
    # would abort on its buffer lock, so leave at once (every reply is already flushed)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
