"""A byte-level tokenizer that needs no download: UTF-8 bytes + 3 special tokens.

Ids: 0 = pad, 1 = bos, 2 = eos, 3 + b for byte b.  Any text encodes (no unknown
token), the vocabulary is fixed (259), and it round-trips exactly.  Pretrained language
models bring their own tokenizer; this one is for models built from a config.
"""

from __future__ import annotations

from typing import Sequence

import torch

PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
VOCAB_SIZE = 256 + OFFSET


class ByteTokenizer:
    vocab_size = VOCAB_SIZE
    pad_id = PAD

    def encode(self, text: str) -> list[int]:
        return [BOS] + [b + OFFSET for b in text.encode("utf-8")] + [EOS]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(i - OFFSET for i in ids if i >= OFFSET).decode("utf-8", errors="replace")

    def __call__(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``(ids, mask)``, both (B, max_length); longer texts are truncated
        (keeping BOS and the first bytes)."""
        ids = torch.full((len(texts), max_length), PAD, dtype=torch.long)
        for i, t in enumerate(texts):
            tok = self.encode(t)[:max_length]
            ids[i, : len(tok)] = torch.tensor(tok, dtype=torch.long)
        return ids, ids != PAD
