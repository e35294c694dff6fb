"""The NeRF worker's request protocol while training is slow: ``stats`` is answered at once
by the reading thread, other requests wait for the step in progress. The bridge here is a
stand-in whose training step blocks until released (the real nerfstudio bridge cannot be
made to take minutes on demand); the pipes, threads and wire format are the real ones."""

import os
import threading

from robolearn.nerf.worker import Worker, read_message, write_message


class SlowBridge:
    n_accepted, n_rejected, last_rejection, n_train_frames = 3, 0, "", 3
    eval_frames, train_seconds, data_seconds = [], 0.0, 0.0

    def __init__(self):
        self.step, self.release, self.training = 0, threading.Event(), threading.Event()

    def train(self, n):
        self.training.set()
        self.release.wait(30)
        self.step += n
        return {"rgb_loss": 0.1}

    def save(self, path):
        return path


def _read(stream, timeout=5.0):
    """The next message, or AssertionError if none comes within ``timeout`` seconds."""
    got = []
    t = threading.Thread(target=lambda: got.append(read_message(stream)), daemon=True)
    t.start()
    t.join(timeout)
    assert got, f"no reply within {timeout} s"
    return got[0]


def test_stats_is_answered_during_a_long_step_and_save_after_it():
    bridge = SlowBridge()
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    to_worker, from_worker = os.fdopen(w_in, "wb"), os.fdopen(r_out, "rb")
    worker = Worker(bridge, os.fdopen(w_out, "wb"))
    threading.Thread(target=worker.reader, args=(os.fdopen(r_in, "rb"),), daemon=True).start()
    threading.Thread(target=worker.run, daemon=True).start()
    assert bridge.training.wait(10)  # the first step is in progress and does not end

    write_message(to_worker, {"op": "save", "id": 1, "path": "x"})
    write_message(to_worker, {"op": "stats", "id": 2})
    reply = _read(from_worker)
    assert reply["id"] == 2 and reply["ok"] and reply["accepted"] == 3 and reply["step"] == 0

    bridge.release.set()  # the step ends: the queued save is handled next
    reply = _read(from_worker)
    assert reply["id"] == 1 and reply["ok"] and reply["path"] == "x" and reply["step"] == 1
    write_message(to_worker, {"op": "close", "id": 3})
    assert _read(from_worker)["id"] == 3
    to_worker.close()
