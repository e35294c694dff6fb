"""A websocket policy server that speaks the openpi client protocol.

Any program with ``openpi-client`` (or any msgpack + websocket client) can drive a
robolearn policy without ROS::

    from openpi_client.websocket_client_policy import WebsocketClientPolicy
    client = WebsocketClientPolicy("localhost", 8000)
    client.get_server_metadata()          # policy, cameras, dims, expected keys
    out = client.infer({"observation/state": q, "observation/front": rgb, "prompt": "..."})
    out["actions"]                        # (horizon, action_dim) float32, robot units

Protocol (openpi's): on connect the server sends its metadata as one msgpack message;
then every binary message from the client is an observation and is answered by one
message with ``actions``.  A request the server cannot use is answered with a text frame
that names the problem (openpi-client raises it as ``RuntimeError``) and the connection
stays open; an internal error sends the traceback and closes with code 1011.  ``GET
/healthz`` answers ``200 OK`` (load balancers, k8s probes).

Observation keys: the state under ``observation.state`` / ``observation/state`` /
``state``; each camera ``<cam>`` the policy reads under ``observation.images.<cam>``,
``observation/images/<cam>``, ``observation/<cam>``, ``observation/<cam>_image`` or
``<cam>`` (uint8 HWC or CHW, or float in [0, 1]; any size - resized bilinearly to the
policy's resolution); the
instruction under ``prompt`` or ``language``.  ``"reset": True`` clears the client's
observation history (policies with ``n_obs > 1`` keep one per connection).
"""

from __future__ import annotations

import http
import threading
import time
import traceback
from collections import deque
from typing import Any, Mapping

import numpy as np

from robolearn import keys as K
from robolearn.serving import wire
from robolearn.serving.config import ServeConfig

STATE_KEYS = (K.OBS_STATE, "observation/state", "state")
PROMPT_KEYS = ("prompt", "language")


def camera_keys(camera: str) -> tuple[str, ...]:
    """Keys under which a client may send camera ``camera``'s image, in lookup order."""
    return (K.image_key(camera), f"observation/images/{camera}", f"observation/{camera}",
            f"observation/{camera}_image", camera)


class BadObservation(ValueError):
    """An observation the policy cannot use; the message says what to send instead."""


def _first(obs: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if n in obs:
            return obs[n]
    return None


def _image_chw(img: Any, camera: str, size: int) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or 3 not in (a.shape[0], a.shape[-1]):
        raise BadObservation(f"camera {camera!r}: expected an RGB image (H, W, 3) or (3, H, W), "
                             f"got shape {a.shape}")
    if a.shape[-1] == 3 and a.shape[0] != 3:
        a = a.transpose(2, 0, 1)
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise BadObservation(f"camera {camera!r}: expected uint8 or float pixels, got "
                                 f"{a.dtype}")
        if not np.isfinite(a).all():
            raise BadObservation(f"camera {camera!r}: image has NaN/inf pixels")
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.shape[1:] != (size, size):  # one size per history, whatever the client sends
        import torch
        import torch.nn.functional as F

        x = F.interpolate(torch.from_numpy(np.ascontiguousarray(a))[None].float(),
                          size=(size, size), mode="bilinear", align_corners=False)
        a = x[0].round().clamp(0, 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(a)


class PolicyServer:
    """Serves one loaded policy to many websocket clients (inference serialised by a lock)."""

    def __init__(self, policy, cfg: ServeConfig, checkpoint: str = ""):
        self.policy, self.cfg, self.checkpoint = policy, cfg, checkpoint
        c = policy.config
        self.cameras = [K.camera_name(k) for k in c.image_keys]
        self.n_obs = int(c.n_obs)
        self._lock = threading.Lock()
        self._server = None
        self.served = 0

    # ---------------------------------------------------------------- protocol content
    @property
    def metadata(self) -> dict:
        c = self.policy.config
        return {
            "server": "robolearn", "protocol": "openpi-websocket",
            "policy": self.policy.name, "checkpoint": self.checkpoint,
            "state_dim": int(c.state_dim), "action_dim": int(c.action_dim),
            "horizon": int(c.horizon), "n_action_steps": int(c.n_action_steps),
            "n_obs": self.n_obs, "cameras": self.cameras, "image_size": int(c.image_size),
            "keys": {"state": list(STATE_KEYS), "prompt": list(PROMPT_KEYS),
                     "images": {cam: list(camera_keys(cam)) for cam in self.cameras}},
            "default_prompt": self.cfg.default_prompt,
        }

    def parse(self, obs: Any) -> tuple[dict[str, np.ndarray], str, bool]:
        """An observation message -> (step dict for window_batch, instruction, reset)."""
        if not isinstance(obs, Mapping):
            raise BadObservation(f"an observation must be a map of named values, got "
                                 f"{type(obs).__name__}")
        obs = {k.decode() if isinstance(k, bytes) else k: v for k, v in obs.items()}
        state = _first(obs, STATE_KEYS)
        want = int(self.policy.config.state_dim)
        if state is None:
            raise BadObservation(f"no state: send the robot state ({want} values) under one of "
                                 f"{list(STATE_KEYS)}")
        state = np.asarray(state, dtype=np.float32).reshape(-1)
        if state.shape[0] != want:
            raise BadObservation(f"state has {state.shape[0]} values; this policy was trained "
                                 f"on {want}")
        if not np.isfinite(state).all():
            raise BadObservation("state has NaN/inf values")
        step = {K.OBS_STATE: state}
        for cam in self.cameras:
            img = _first(obs, camera_keys(cam))
            if img is None:
                raise BadObservation(f"no image for camera {cam!r}: send it under one of "
                                     f"{list(camera_keys(cam))}")
            step[K.image_key(cam)] = _image_chw(img, cam, int(self.policy.config.image_size))
        prompt = _first(obs, PROMPT_KEYS)
        if isinstance(prompt, bytes):
            prompt = prompt.decode("utf-8", "replace")
        if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
            prompt = self.cfg.default_prompt
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadObservation("no instruction: send it under 'prompt' (or start the server "
                                 "with default_prompt=...)")
        return step, prompt, bool(obs.get("reset", False))

    def infer(self, history: deque, obs: Any) -> dict:
        """One request: parse, extend this client's history, predict a chunk."""
        import torch

        from robolearn.control.window import window_batch

        t0 = time.perf_counter()
        step, prompt, reset = self.parse(obs)
        if reset:
            history.clear()
        history.append(step)
        batch = window_batch([list(history)], self.n_obs, [prompt])
        with self._lock, torch.no_grad():
            t1 = time.perf_counter()
            chunk = self.policy.predict_action_chunk(self.policy.on_device(batch))
            actions = chunk[0].float().cpu().numpy().astype(np.float32)
            t2 = time.perf_counter()
        if not np.isfinite(actions).all():
            raise RuntimeError("the policy produced NaN/inf actions; nothing was sent to the "
                               "robot - check the checkpoint")
        self.served += 1
        return {"actions": actions,
                "policy_timing": {"infer_ms": (t2 - t1) * 1e3},
                "server_timing": {"infer_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3}}

    def warmup(self) -> None:
        """One inference on a blank observation (lazy inits and allocator warm-up)."""
        c = self.policy.config
        obs = {K.OBS_STATE: np.zeros(c.state_dim, np.float32), "prompt": "warm up"}
        for cam in self.cameras:
            obs[K.image_key(cam)] = np.zeros((3, c.image_size, c.image_size), np.uint8)
        self.infer(deque(maxlen=self.n_obs), obs)
        self.served = 0

    # ---------------------------------------------------------------- websocket plumbing
    def _process_request(self, connection, request):
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if self.cfg.api_key:
            got = request.headers.get("Authorization", "")
            if got != f"Api-Key {self.cfg.api_key}":
                return connection.respond(http.HTTPStatus.UNAUTHORIZED,
                                          "missing or wrong 'Authorization: Api-Key ...'\n")
        return None

    def _handle(self, connection) -> None:
        from websockets.exceptions import ConnectionClosed

        history: deque = deque(maxlen=self.n_obs)
        try:
            connection.send(wire.packb(self.metadata))
            while True:
                msg = connection.recv()
                if isinstance(msg, str):
                    connection.send("robolearn-serve: send observations as binary msgpack "
                                    "messages, not text")
                    continue
                try:
                    reply = self.infer(history, wire.unpackb(msg))
                except BadObservation as e:
                    connection.send(f"robolearn-serve: bad observation: {e}")
                    continue
                except Exception:  # noqa: BLE001 - report to the client, then close
                    connection.send(traceback.format_exc())
                    connection.close(code=1011, reason="internal error")
                    return
                connection.send(wire.packb(reply))
        except ConnectionClosed:
            return

    def start(self):
        """Listen (in a background thread); returns the bound (host, port)."""
        from websockets.sync.server import serve

        self._server = serve(self._handle, self.cfg.host, self.cfg.port, compression=None,
                             max_size=self.cfg.max_message_mb * 2 ** 20,
                             process_request=self._process_request)
        threading.Thread(target=self._server.serve_forever, name="policy_server",
                         daemon=True).start()
        return self._server.socket.getsockname()[:2]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
