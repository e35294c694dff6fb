"""SIGKILL a real writer process at random moments: committed episodes always survive intact,
nothing half-written is ever visible, and a concurrent reader never sees a partial episode."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from robolearn import keys as K
from robolearn.data.check import check_store
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import synthetic_episode

WRITER = r"""
import sys
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import synthetic_episode, synthetic_meta
path = sys.argv[1]
try:
    store = TrajectoryStore.open(path, mode="a")
except Exception:
    store = TrajectoryStore.create(path, image_chunk_steps=16, lowdim_chunk_steps=32)
print("ready", flush=True)
i = store.n_episodes
while True:
    store.append_episode(synthetic_episode(5 + (i * 7) % 23, i, image_size=16), synthetic_meta(i))
    i += 1
"""


def _verify(store: TrajectoryStore, upto: int | None = None) -> None:
    n = store.n_episodes if upto is None else upto
    lengths = store.episode_lengths
    for i in range(n):
        assert lengths[i] == 5 + (i * 7) % 23, f"episode {i} has a wrong length"
        want = synthetic_episode(int(lengths[i]), i, image_size=16)
        got = store.get_episode(i, [K.ACTION, K.image_key("wrist"), K.SKILL])
        np.testing.assert_array_equal(got[K.ACTION], want[K.ACTION])
        np.testing.assert_array_equal(got[K.image_key("wrist")], want[K.image_key("wrist")])
        assert list(got[K.SKILL]) == want[K.SKILL]
        assert store.episode_meta(i)["seed"] == i


def test_sigkill_writer_never_corrupts(tmp_path):
    path = str(tmp_path / "crash.zarr")
    rng = np.random.default_rng(0)
    committed = 0
    reader_checks = 0
    for round_ in range(10):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout.readline().strip() == b"ready"
        reader = TrajectoryStore.open(path)
        # let the writer commit at least one more episode (however loaded the machine is),
        # then kill it at a random moment of a later append
        wait_until = time.monotonic() + 60
        while reader.n_episodes <= committed and time.monotonic() < wait_until:
            time.sleep(0.01)
            reader.refresh()
        deadline = time.monotonic() + rng.uniform(0.0, 0.3)
        while time.monotonic() < deadline:  # a concurrent reader while the writer runs
            reader.refresh()
            if reader.n_episodes:
                _verify(reader, upto=reader.n_episodes)  # the newest visible episode too
                reader_checks += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = TrajectoryStore.open(path)
        assert store.n_episodes >= committed, "a committed episode disappeared"
        _verify(store)
        rep = check_store(path)
        assert rep.ok, rep.errors
        committed = store.n_episodes
    assert committed > 10, "the writer should have committed episodes between kills"
    assert reader_checks > 0
    # the store is still appendable after all that
    w = TrajectoryStore.open(path, mode="a")
    assert w.n_episodes == committed
    assert not list(tmp_path.rglob("*.partial")), "the next writer removes temp files"


def test_ctrl_c_during_an_append_is_delivered_after_the_commit(tmp_path, monkeypatch):
    """A SIGINT that arrives mid-append is held until the episode is committed, then
    raised: the episode is complete and the store consistent."""
    import os
    import signal
    import time

    import pytest

    from robolearn.data.store import TrajectoryStore
    from robolearn.data.testing import synthetic_episode, synthetic_meta

    st = TrajectoryStore.create(tmp_path / "s.zarr")
    real = st._write_episode

    def slow_write(*a):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the signal is handled here, in the middle of the write
        return real(*a)

    monkeypatch.setattr(st, "_write_episode", slow_write)
    # Python's own Ctrl-C handler, whatever the suite inherited (background runs ignore SIGINT)
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            st.append_episode(synthetic_episode(9, 0), synthetic_meta(0))
        assert st.n_episodes == 1
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, prev)
        st.close()
