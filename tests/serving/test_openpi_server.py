"""robolearn-serve against the real openpi-client: metadata on connect, actions equal to
in-process inference, clear errors that keep the session alive, health check, API key."""

import os
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import torch

from robolearn import keys as K

openpi_ws = pytest.importorskip("openpi_client.websocket_client_policy",
                                reason="openpi-client is installed by `make test`")


def _checkpoint(path):
    """A tiny bc policy (15-D state, 8-D actions, front + wrist cameras, 2 observation steps)."""
    from robolearn.policies.bc.config import BCConfig
    from robolearn.policies.testing import synthetic_policy

    cfg = BCConfig.tiny()
    cfg.n_obs = 2
    synthetic_policy("bc", cfg, cameras=["front", "wrist"])[0].save_pretrained(path)
    return str(path)


def _obs(rng, size, prompt="pick up the red block"):
    return {"observation/state": rng.normal(size=15).astype(np.float32),
            "observation/front": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),  # HWC
            "observation.images.wrist": rng.integers(0, 255, (3, size, size), dtype=np.uint8),
            "prompt": prompt}


def _expected(policy, history, prompt):
    from robolearn.control.window import window_batch

    steps = [{K.OBS_STATE: o["observation/state"],
              K.image_key("front"): np.ascontiguousarray(o["observation/front"].transpose(2, 0, 1)),
              K.image_key("wrist"): o["observation.images.wrist"]} for o in history]
    with torch.no_grad():
        return policy.predict_action_chunk(window_batch([steps], 2, [prompt]))[0].numpy()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ckpt = _checkpoint(tmp_path_factory.mktemp("serve") / "policy")
    proc = subprocess.Popen([sys.executable, "-m", "robolearn.cli.serve", f"checkpoint={ckpt}",
                             "port=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                        signal.SIG_DFL))
    line = proc.stdout.readline()
    assert "serving" in line, line + proc.stdout.read()
    port = int(line.split("ws://")[1].split()[0].rsplit(":", 1)[1])
    yield ckpt, port, proc
    if proc.poll() is None:
        proc.kill()


def test_openpi_client_round_trip(served):
    from robolearn.policies.base import load_policy

    ckpt, port, _ = served
    client = openpi_ws.WebsocketClientPolicy("127.0.0.1", port)
    meta = client.get_server_metadata()
    assert meta["policy"] == "bc" and meta["cameras"] == ["front", "wrist"]
    assert (meta["state_dim"], meta["action_dim"], meta["n_obs"]) == (15, 8, 2)

    policy = load_policy(ckpt).eval()
    rng = np.random.default_rng(0)
    size = policy.config.image_size
    history = []
    for _ in range(3):  # n_obs = 2: the server keeps this client's history
        obs = _obs(rng, size)
        history.append(obs)
        out = client.infer(obs)
        assert out["actions"].shape == (policy.config.horizon, 8)
        assert out["actions"].dtype == np.float32
        np.testing.assert_allclose(out["actions"], _expected(policy, history[-2:], obs["prompt"]),
                                   rtol=1e-5, atol=1e-5)
        assert out["server_timing"]["infer_ms"] > 0
    # reset starts a new episode: the window is the new observation repeated
    obs = dict(_obs(rng, size), reset=True)
    out = client.infer(obs)
    np.testing.assert_allclose(out["actions"], _expected(policy, [obs], obs["prompt"]),
                               rtol=1e-5, atol=1e-5)
    # float images in [0, 1] at another resolution are accepted
    obs = _obs(rng, size)
    obs["observation/front"] = rng.random((2 * size, 2 * size, 3)).astype(np.float32)
    assert np.isfinite(client.infer(obs)["actions"]).all()


def test_bad_observations_get_a_clear_error_and_the_session_survives(served):
    _, port, _ = served
    client = openpi_ws.WebsocketClientPolicy("127.0.0.1", port)
    rng = np.random.default_rng(1)
    size = client.get_server_metadata()["image_size"]
    good = _obs(rng, size)
    for broken, words in [
        ({k: v for k, v in good.items() if k != "observation/state"}, "no state"),
        (dict(good, **{"observation/state": np.zeros(7, np.float32)}), "trained on 15"),
        ({k: v for k, v in good.items() if k != "observation/front"}, "camera 'front'"),
        (dict(good, **{"observation/front": np.zeros((size, size), np.uint8)}), "RGB image"),
        ({k: v for k, v in good.items() if k != "prompt"}, "no instruction"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            client.infer(broken)
    assert client.infer(good)["actions"].shape[1] == 8


def test_health_check_and_clean_shutdown(served):
    _, port, proc = served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        assert r.status == 200 and r.read() == b"OK\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert "stopped after" in proc.stdout.read()


def test_api_key_is_enforced(tmp_path):
    from websockets.exceptions import InvalidStatus

    from robolearn.policies.base import load_policy
    from robolearn.serving.config import ServeConfig
    from robolearn.serving.server import PolicyServer

    server = PolicyServer(load_policy(_checkpoint(tmp_path / "p")).eval(),
                          ServeConfig(port=0, api_key="s3cret"))
    host, port = server.start()
    try:
        with pytest.raises(InvalidStatus, match="401"):
            openpi_ws.WebsocketClientPolicy(host, port)
        client = openpi_ws.WebsocketClientPolicy(host, port, api_key="s3cret")
        assert client.get_server_metadata()["policy"] == "bc"
    finally:
        server.stop()


def test_cli_refuses_a_missing_checkpoint(tmp_path):
    r = subprocess.run([sys.executable, "-m", "robolearn.cli.serve",
                        f"checkpoint={tmp_path / 'nope'}"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ))
    assert r.returncode == 2 and "robolearn-serve:" in r.stderr and "nope" in r.stderr
