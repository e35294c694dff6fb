"""Serve the embedded model (llama.cpp + SmolLM2 GGUF) as an OpenAI-compatible HTTP endpoint.

    python -m robolearn.planner.serve [--port 8080] [--host 127.0.0.1] [--model X.gguf]

Prints the base URL (``http://host:port/v1``) on the first line of stdout, then serves until
killed.  Used by tests and benchmarks of the ``openai`` backend, and by users who want one
model server shared by several planner processes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 = any free port")
    ap.add_argument("--model", default="", help="GGUF file (default: SmolLM2-135M)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-ctx", type=int, default=2048)
    a = ap.parse_args(argv)
    from robolearn.planner.backends import start_llama_server

    server = start_llama_server(a.model or None, a.n_ctx, a.threads, a.host, a.port)
    print(server.listening_address.rstrip("/") + "/v1", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    del server
    sys.exit(0)


if __name__ == "__main__":
    main()
