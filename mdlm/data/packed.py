"""Pre-tokenised, packed token arrays: tokenise once (here), carry a small file (to a GPU machine without the
corpora or the tokenizer's source), train from it.

``pack_documents`` joins documents with a separator id (for SmolLM2 ``<|endoftext|>``, its pre-training document
separator — not the chat EOS) and cuts rows of ``seq_len`` ids. ``save_packed`` writes one compressed ``.npz``
(one array per split, uint16 when the vocabulary allows) + the run recipe reads it back with ``load_packed`` as
``datasets.Dataset`` rows ``{"input_ids"}`` for :class:`mdlm.training.MDMCollator`.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
from datasets import Dataset


def pack_documents(texts: Iterable[str], tokenizer, seq_len: int, separator_id: int, max_tokens: int | None = None,
                   batch: int = 512) -> np.ndarray:
    """(N, seq_len) int64 rows: each document's ids followed by ``separator_id``, concatenated, cut (tail dropped);
    stops after ``max_tokens`` tokens when given."""
    texts = list(texts)
    chunks: list[np.ndarray] = []
    total = 0
    for i in range(0, len(texts), batch):
        ids = tokenizer(texts[i : i + batch], add_special_tokens=False)["input_ids"]
        flat = np.fromiter((t for row in ids for t in (*row, separator_id)), dtype=np.int64)
        chunks.append(flat)
        total += len(flat)
        if max_tokens is not None and total >= max_tokens:
            break
    flat = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    if max_tokens is not None:
        flat = flat[:max_tokens]
    n = len(flat) // seq_len
    if n == 0:
        raise ValueError(f"the text gives {len(flat)} tokens, fewer than one row of {seq_len}")
    return flat[: n * seq_len].reshape(n, seq_len)


def save_packed(path: str, splits: dict[str, np.ndarray], vocab_size: int) -> str:
    """Write ``splits`` (name → (N, L) ids) to ``path`` (.npz, compressed) atomically; uint16 when vocab ≤ 65536."""
    dtype = np.uint16 if vocab_size <= 65536 else np.int32
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)  # e.g. .data/ on a fresh clone
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **{k: v.astype(dtype) for k, v in splits.items()})
    os.replace(tmp, path)
    return path


def load_packed(path: str, split: str, max_rows: int | None = None) -> Dataset:
    """One split of a :func:`save_packed` file as a ``Dataset`` of ``input_ids`` rows (int64)."""
    if not os.path.isfile(path):
        raise ValueError(f"packed data file {path!r} does not exist")
    with np.load(path) as z:
        if split not in z.files:
            raise ValueError(f"{path!r} has no split {split!r} (it has {', '.join(z.files)})")
        rows = z[split].astype(np.int64)
    if max_rows is not None:
        rows = rows[:max_rows]
    return Dataset.from_dict({"input_ids": rows})


def packed_splits(path: str) -> list[str]:
    with np.load(path) as z:
        return list(z.files)
