"""``robolearn-serve``: serve a trained policy over websockets with the openpi client protocol.

    robolearn-serve checkpoint=runs/train/flow_vla                  # ws://127.0.0.1:8000
    robolearn-serve checkpoint=RUN host=0.0.0.0 port=8000 api_key=SECRET default_prompt="..."

Clients: ``openpi_client.websocket_client_policy.WebsocketClientPolicy(host, port)``; its
``infer(obs)`` returns ``{"actions": (horizon, action_dim)}`` in the robot's units.  The
metadata sent on connect lists the keys the policy reads.  ``GET /healthz`` answers 200.
Ctrl-C (or SIGTERM) stops the server.
"""

from __future__ import annotations

import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    from robolearn.cli import checkpoint_cli

    got = checkpoint_cli("robolearn-serve", __doc__, "serve/default", "serve", argv)
    if isinstance(got, int):
        return got
    cfg, path = got
    from robolearn.policies.base import load_policy
    from robolearn.serving.server import PolicyServer

    policy = load_policy(path, cfg.device)
    policy.eval()
    server = PolicyServer(policy, cfg, str(path))
    if cfg.warmup:
        server.warmup()
    try:
        host, port = server.start()
    except OSError as e:
        print(f"robolearn-serve: cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}; "
              "pick another port= (0 = any free port)", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving {policy.name} from {path} on ws://{host}:{port} "
          f"(cameras {server.cameras}, chunks of {policy.config.horizon})", flush=True)
    stop.wait()
    server.stop()
    print(f"stopped after {server.served} requests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
