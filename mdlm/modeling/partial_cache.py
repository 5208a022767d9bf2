"""Partial caching for choose-then-sample decoding (Hayakawa et al. 2025, "Demystifying MaskGIT
Sampler and Beyond", arXiv:2510.04525, §"partial caching"; our reading of it, from the paper's summary).

A choose-then-sample sampler (the moment sampler) knows *which* positions a step will unmask before it
draws any token. Drawing those k tokens one group after another, each group conditioned on the groups
before it, is a longer (more accurate) sampling trajectory; run naively it costs one full forward per
group. Partial caching makes the extra forwards cheap: the step's full forward stores every layer's
K/V (:class:`~mdlm.modeling.kv_cache.BlockKVCache`), and each later group recomputes only the step's
chosen columns — Q = k positions instead of L — attending over [cached K/V of all other columns] ∪
[fresh K/V of the chosen ones].

Exactness: the first group is exact (it uses the full forward). A later group is exact at layer 1 (a
column's layer-1 K/V depends only on its own token, and only the chosen columns' tokens changed); from
layer 2 on the other columns' cached K/V do not see the newly drawn tokens, so it approximates the full
forward (a one-layer model is exact; tests/test_partial_cache.py checks both). ``eval/bench_partial_cache.py``
measures the approximation against the exact sub-step trajectory.
"""

from __future__ import annotations

from typing import Any

import torch

from .kv_cache import BlockKVCache, check_cache_model
from .padding import default_position_ids

Tensor = torch.Tensor


class PartialCachedLogits:
    """Full forwards that fill a K/V cache, then forwards of scattered columns against it.

    ``fill(x, am)`` → (B, L, V) logits of the whole canvas (one NFE, L positions) and a fresh cache;
    ``query(x, am, idx)`` → (B, Q, V) logits of the columns ``idx`` (B, Q) of canvas ``x`` (their tokens
    may have changed since ``fill``), computing only those Q columns. ``positions`` counts the columns
    computed per row over all calls. Rows of ``query`` must be the rows of the last ``fill``.

    Args:
        model: an nn.Module with ``supports_block_kv_cache`` (e.g. ``MDLMForMaskedLM``), eval mode.
    """

    def __init__(self, model: Any):
        check_cache_model(model, "partial caching", "pass e.g. an MDLMForMaskedLM, not a wrapped function")
        self.model = model
        self.cache: BlockKVCache | None = None
        self.positions = 0

    @torch.no_grad()
    def fill(self, x: Tensor, am: Tensor | None) -> Tensor:
        """Full forward of ``x`` (B, L): refresh the cache and return the logits (B, L, V)."""
        self.cache = BlockKVCache()
        out = self.model(input_ids=x, attention_mask=am, position_ids=default_position_ids(x, am), kv_cache=self.cache)
        self.positions += x.shape[1]
        return out.logits

    @torch.no_grad()
    def query(self, x: Tensor, am: Tensor | None, idx: Tensor) -> Tensor:
        """Logits (B, Q, V) of columns ``idx`` (B, Q) long of ``x`` (B, L), against the cache."""
        if self.cache is None or not self.cache.filled:
            raise RuntimeError("PartialCachedLogits.query before fill")
        if self.cache.length != x.shape[1] or self.cache.keys[0].shape[0] != x.shape[0]:
            raise ValueError(f"the cache holds {self.cache.keys[0].shape[0]} rows × {self.cache.length} columns, "
                             f"got a canvas of shape {tuple(x.shape)}")
        self.cache.fresh_index = idx
        try:
            out = self.model(input_ids=x.gather(1, idx), attention_mask=am,
                             position_ids=default_position_ids(x, am).gather(1, idx), kv_cache=self.cache)
        finally:
            self.cache.fresh_index = None
        self.positions += idx.shape[1]
        return out.logits  # (B, Q, V)


__all__ = ["PartialCachedLogits"]
