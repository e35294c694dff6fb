"""The LLM planner: instruction + symbolic scene -> a validated plan of skill calls.

Light to import; LLM backends load their heavy dependencies when constructed.
"""

from robolearn.planner.backends import (BACKENDS, BackendError, BackendUnreachable,
                                        LLMBackend, make_backend)
from robolearn.planner.config import MODES, PlannerConfig
from robolearn.planner.domain import Domain
from robolearn.planner.plan import Plan, format_plan, parse_calls
from robolearn.planner.planner import Planner

__all__ = ["BACKENDS", "BackendError", "BackendUnreachable", "Domain", "LLMBackend", "MODES",
           "Plan", "Planner", "PlannerConfig", "build_planner", "format_plan", "make_backend",
           "parse_calls"]


def build_planner(skills, config: PlannerConfig | None = None, **kw) -> Planner:
    """A planner with the backend named in ``config`` (with failover if configured)."""
    from robolearn.planner.backends import FallbackBackend

    cfg = config or PlannerConfig()
    backend = None if cfg.mode == "nearest" else _backend(cfg.backend, cfg)
    if backend is not None and cfg.fallback:
        backend = FallbackBackend(backend, lambda: _backend(cfg.fallback, cfg))
    return Planner(skills, backend, config=cfg, **kw)


def _backend(name: str, cfg: PlannerConfig) -> LLMBackend:
    if name == "embedded":
        return make_backend(name, model_path=cfg.model_path or None, n_ctx=cfg.n_ctx,
                            threads=cfg.threads)
    if name == "openai":
        return make_backend(name, base_url=cfg.base_url, model=cfg.model, api_key=cfg.api_key,
                            timeout_s=cfg.timeout_s, retries=cfg.retries,
                            grammar_field=cfg.grammar_field)
    if name == "transformers":
        return make_backend(name, path=cfg.model_path, gguf_file=cfg.gguf_file or None,
                            threads=cfg.threads)
    return make_backend(name)  # raises with the valid names
