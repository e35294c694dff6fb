"""Config of ``robolearn-serve`` (dataclasses only: cheap to import, registered with hydra)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeConfig:
    """A websocket policy server speaking the openpi client protocol."""

    checkpoint: str = ""
    """Policy to serve: a run folder (latest checkpoint, EMA weights), a checkpoints/step_* folder or a policy folder."""
    host: str = "127.0.0.1"
    """Interface to listen on (0.0.0.0 to accept clients from other machines)."""
    port: int = 8000
    """TCP port (0 = any free port; the chosen one is printed as `serving ws://HOST:PORT`)."""
    device: str = "cpu"
    """Device of the policy (cpu, cuda, cuda:N)."""
    api_key: str = ""
    """When set, clients must send `Authorization: Api-Key <key>` (openpi-client's api_key); others get HTTP 401."""
    default_prompt: str = ""
    """Instruction used when an observation carries no `prompt` (empty: such observations are rejected)."""
    max_message_mb: int = 64
    """Largest accepted observation message in MiB; a bigger one closes the connection (websocket code 1009)."""
    warmup: bool = True
    """Run one inference on a blank observation before accepting clients (first-call latency off the robot's clock)."""

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.max_message_mb <= 0:
            raise ValueError(f"max_message_mb must be positive, got {self.max_message_mb}")
