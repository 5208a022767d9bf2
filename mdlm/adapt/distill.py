"""Self-distilled training text: rows sampled from the AR source itself, for AR → MDM adaptation.

The offline corpora give ~1 M tokens of encyclopaedic English (docs/backbones.md); an adaptation that repeats them
many times stops improving on held-out text. Text sampled from the source model is unlimited and, by construction,
in the source's own distribution — what the adapted MDM should reproduce. Each row starts right after the document
separator (SmolLM2: ``<|endoftext|>``) and is sampled by plain ancestral sampling (temperature 1, no top-k / top-p
truncation: the model's distribution, not a sharpened one) for exactly ``seq_len`` tokens; an end-of-text token the
model emits does not stop the row, so what follows it is the model's next document, as in packed pre-training rows.
"""

from __future__ import annotations

import time

import numpy as np
import torch


@torch.inference_mode()
def sample_rows(lm: torch.nn.Module, separator_id: int, num_rows: int, seq_len: int, *, batch_size: int = 512,
                temperature: float = 1.0, seed: int = 0, progress: bool = True) -> tuple[np.ndarray, float]:
    """((num_rows, seq_len) int64 ids sampled from causal LM ``lm`` after ``separator_id``, tokens/s).

    ``lm``: an HF causal LM (``generate`` with a KV cache), on the device it should run on. Rows are drawn
    ``batch_size`` at a time with ``torch.manual_seed(seed + batch index)``, so a run is reproducible per device.
    Raises ``ValueError`` for a non-positive size or temperature."""
    if num_rows < 1 or seq_len < 1 or batch_size < 1:
        raise ValueError(f"num_rows, seq_len and batch_size must be ≥ 1, got {num_rows}, {seq_len}, {batch_size}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (ancestral sampling), got {temperature}")
    from tqdm.auto import tqdm

    from transformers import GenerationConfig

    # no end-of-text at all: nothing stops a row early, and nothing is suppressed (min_new_tokens would forbid EOS)
    config = GenerationConfig(do_sample=True, temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=seq_len,
                              eos_token_id=None, pad_token_id=separator_id)
    device = next(lm.parameters()).device
    was, saved_eos = lm.training, lm.generation_config.eos_token_id
    lm.generation_config.eos_token_id = None  # generate fills unset fields from the model's own config
    lm.eval()
    out = np.zeros((num_rows, seq_len), dtype=np.int64)
    t0 = time.perf_counter()
    starts = range(0, num_rows, batch_size)
    try:
        for i, start in enumerate(tqdm(starts, desc="sampling rows", unit="batch", disable=not progress)):
            n = min(batch_size, num_rows - start)
            prompt = torch.full((n, 1), separator_id, dtype=torch.long, device=device)  # (n, 1)
            torch.manual_seed(seed + i)
            ids = lm.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=config)  # (n, 1 + L)
            out[start : start + n] = ids[:, 1:].cpu().numpy()
    finally:
        lm.train(was)
        lm.generation_config.eos_token_id = saved_eos
    return out, num_rows * seq_len / (time.perf_counter() - t0)


def merge_train(real: np.ndarray, distilled: np.ndarray, seed: int = 0) -> np.ndarray:
    """The real and the distilled training rows, (N_real + N_distilled, L), shuffled by row together."""
    if real.shape[1] != distilled.shape[1]:
        raise ValueError(f"row lengths differ: real {real.shape[1]}, distilled {distilled.shape[1]}")
    rows = np.concatenate([real.astype(np.int64), distilled.astype(np.int64)])
    return rows[np.random.default_rng(seed).permutation(len(rows))]
