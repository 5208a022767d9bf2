"""Block KV cache for semi-autoregressive masked-diffusion decoding (Fast-dLLM, Wu et al. 2025).

Semi-autoregressive samplers (LLaDA §2.4, Fast-dLLM) decode the generated region block by block,
left to right, with several denoising steps per block. Only the current block changes inside a
block, so the keys/values (K/V) of every other position can be computed once at the block's start
and reused for the block's later steps; each later step then runs the network on the block alone.

Modes (``CACHE_MODES``):

* ``"dual"`` (Fast-dLLM's DualCache): at each block start one full forward of the whole canvas
  stores every layer's K/V (after RoPE) for every position. Each later step of the block recomputes
  only the block's columns [lo, hi); their queries attend over [cached K/V of the prefix and the
  suffix] ∪ [fresh K/V of the block]. Cost of a step: W query positions instead of L.
* ``"prefix"`` (Fast-dLLM's PrefixCache): the same full forward at each block start; each later
  step recomputes the block AND everything after it, [lo, L), attending over [cached prefix K/V] ∪
  [fresh K/V of block + suffix]. Positions after the block are **kept** in attention (recomputed),
  not dropped: dropping them would change the function a bidirectional model computes (it was
  trained to see the whole canvas), so the first step of a block would no longer match the uncached
  model. Cost of a step: L − lo query positions.

* ``ExactPrefixKVCache`` (below; the sampler's ``cache_implementation="block_exact"``) is a different cache for a
  different model: a block-diffusion model (``config.block_size``, BD3-LM) never lets a clean block attend to
  anything after it, so the K/V of its finished blocks are final and caching them is exact
  (docs/block_diffusion.md).

What is exact and what is not for "dual" / "prefix" (a deterministic model, up to floating-point reordering):

* The block-start forward is the full forward: the first step of every block is exact.
* A later step is exact at layer 1 (its K/V depend only on each position's own token, and the
  cached positions' tokens do not change inside a block). From layer 2 on, the cached K/V of the
  prefix (both modes) and of the suffix (dual) were computed while the block still held its older
  tokens: they do not see the tokens committed since the block began, so a later step is an
  approximation of the full forward. A one-layer model is therefore exact at every step, and a
  sampler that takes one step per block is exact for any depth (tests/test_kv_cache.py checks both).
* Anything written outside the recomputed columns inside a block (e.g. the sampler's EOS fill of
  the suffix) is seen by dual cache only at the next block start.

Padding is honoured: the full (B, L) attention mask of the canvas masks the cached *and* the fresh
keys, and the recomputed columns keep the position ids they have in the full canvas, so a
left-padded ragged batch decodes as its rows would one by one.

This module holds the cache's data structure only. The model side is two hooks
(``mdlm/modeling/modeling.py``): ``MDLMForMaskedLM.forward(..., kv_cache=BlockKVCache)`` passes the cache to
every attention layer, which calls :meth:`BlockKVCache.update` with its freshly computed, rotated K/V. The
calls that fill and query it belong to the sampler's model runner (:mod:`mdlm.sampling.runner`,
:mod:`mdlm.sampling.cached_calls`): any model whose forward takes ``input_ids, attention_mask, position_ids,
logits_positions, kv_cache`` and sets ``supports_block_kv_cache = True`` works there. Inference only: the
cache is written in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

Tensor = torch.Tensor

CACHE_MODES = ("none", "prefix", "dual")


def check_cache_mode(mode: str) -> str:
    """Validate a cache mode name (case-insensitive); raise ``ValueError`` listing the valid ones."""
    if not isinstance(mode, str) or mode.lower() not in CACHE_MODES:
        raise ValueError(f"unknown cache {mode!r}; valid: {', '.join(CACHE_MODES)}")
    return mode.lower()


def supports_kv_cache(model: Any) -> bool:
    """True when ``model`` exposes the block KV-cache interface (``supports_block_kv_cache``)."""
    return bool(getattr(model, "supports_block_kv_cache", False))


def check_cache_model(model: Any, what: str, hint: str) -> None:
    """TypeError unless ``model`` has the K/V cache interface; ValueError for a causal model."""
    if not supports_kv_cache(model):
        raise TypeError(f"{type(model).__name__} does not expose the K/V cache interface (supports_block_kv_cache) "
                        f"that {what} needs; {hint}")
    if bool(getattr(getattr(model, "config", None), "is_causal", False)):
        raise ValueError(f"{what} is for bidirectional models; this model has is_causal=True")


@dataclass
class BlockKVCache:
    """Per-layer keys/values of one canvas, filled by a full forward, then partly refreshed.

    Attributes:
        keys, values: one (B, Hkv, L, D) tensor per layer, RoPE already applied to the keys,
            for every column of the canvas (filled by the first forward that receives the cache).
        fresh_start: None while filling (the forward's input is the whole canvas); else the
            column where the forward's input slice starts: its fresh K/V overwrite columns
            [fresh_start, fresh_start + Q) of every layer and the layer attends over all L columns.
        fresh_index: (B, Q) long, scattered fresh columns per row (partial caching) instead of a span.
        fresh_columns: (Q,) long, the fresh columns as a device tensor (the same in every row) instead of
            ``fresh_start``: a forward that reads its columns from a tensor is the same kernels for every block,
            so one CUDA graph serves them all (the sampler's ``cuda_graphs``).

    A fill of an already filled cache with K/V of the same shapes writes into the existing tensors (fixed storage,
    which a CUDA graph of a later step reads) instead of replacing them.
    """

    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    fresh_start: int | None = None
    fresh_index: Tensor | None = None  # (B, Q) long: scattered fresh columns (partial caching) instead of a span
    fresh_columns: Tensor | None = None  # (Q,) long: a span given as a tensor (block-invariant CUDA graphs)

    @property
    def slicing(self) -> bool:
        """True once filled and the forward's input is a part of the canvas (a span or scattered columns)."""
        return self.fresh_start is not None or self.fresh_index is not None or self.fresh_columns is not None

    @property
    def filled(self) -> bool:
        return len(self.keys) > 0

    @property
    def length(self) -> int:
        """Number of canvas columns cached (L), 0 before filling."""
        return self.keys[0].shape[2] if self.keys else 0

    def update(self, layer_idx: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store or splice one layer's fresh K/V; return the K/V the layer must attend over.

        k, v: (B, Hkv, Q, D) for the forward's input columns → (B, Hkv, L, D) each."""
        if not self.slicing:  # filling: the input is the whole canvas
            if layer_idx < len(self.keys):  # a refill: in place, so the storage a captured step reads stays
                kc, vc = self.keys[layer_idx], self.values[layer_idx]
                if kc.shape != k.shape:
                    raise ValueError(f"refilling a cache of K/V {tuple(kc.shape)} with {tuple(k.shape)}: "
                                     "use a new BlockKVCache for another canvas")
                kc.copy_(k)
                vc.copy_(v)
                return kc, vc
            if layer_idx != len(self.keys):
                raise RuntimeError(f"KV cache filled out of order: layer {layer_idx} after {len(self.keys)} layers")
            self.keys.append(k)
            self.values.append(v)
            return k, v
        if layer_idx >= len(self.keys):
            raise RuntimeError(f"KV cache has {len(self.keys)} layers; layer {layer_idx} was never filled")
        kc, vc = self.keys[layer_idx], self.values[layer_idx]  # (B, Hkv, L, D)
        if self.fresh_index is not None:  # scattered columns: (B, Q) → every head and channel
            idx = self.fresh_index[:, None, :, None].expand(-1, kc.shape[1], -1, kc.shape[3])  # (B, Hkv, Q, D)
            if idx.shape != k.shape:
                raise ValueError(f"fresh_index {tuple(self.fresh_index.shape)} does not match fresh K/V {tuple(k.shape)}")
            kc.scatter_(2, idx, k)
            vc.scatter_(2, idx, v)
            return kc, vc
        if self.fresh_columns is not None:  # a span read from a tensor: (Q,) columns of every row
            if self.fresh_columns.shape[0] != k.shape[2] or kc.shape[0] != k.shape[0]:
                raise ValueError(f"fresh_columns {tuple(self.fresh_columns.shape)} / cached K/V {tuple(kc.shape)} do "
                                 f"not match fresh K/V {tuple(k.shape)}")
            kc.index_copy_(2, self.fresh_columns, k)
            vc.index_copy_(2, self.fresh_columns, v)
            return kc, vc
        s, e = self.fresh_start, self.fresh_start + k.shape[2]
        if kc.shape[0] != k.shape[0] or e > kc.shape[2]:
            raise ValueError(
                f"cached K/V of shape {tuple(kc.shape)} cannot take columns [{s}, {e}) of a batch of {k.shape[0]}"
            )
        kc[:, :, s:e] = k  # in place: the block's slots always hold the latest fresh K/V
        vc[:, :, s:e] = v
        return kc, vc


@dataclass
class ExactPrefixKVCache:
    """Block diffusion's exact cache (BD3-LM): the K/V of the clean prefix, columns [0, ``length``).

    A block-diffusion model's clean blocks never attend to anything after them (block-causal mask), so their
    K/V, once computed from clean tokens, are final: caching them is exact, unlike ``BlockKVCache``'s
    approximation for bidirectional models. A forward of columns [``start``, start + Q) writes its fresh K/V
    into a preallocated buffer at those columns and attends over columns [0, start + Q); afterwards the caller
    moves ``length`` forward over the columns that were clean (:mod:`mdlm.sampling.cached_calls`). Columns
    past ``length`` hold stale K/V that the next forward overwrites before reading them.

    Attributes:
        capacity: columns of the buffer (the canvas length); keys, values: one (B, Hkv, capacity, D) buffer
            per layer (RoPE applied), made by the first forward; start: first column of the running forward.
    """

    capacity: int
    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    start: int = 0
    length: int = 0

    slicing = True  # the forward's input is always a slice of the canvas (its position_ids are required)

    def update(self, layer_idx: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write one layer's fresh K/V (B, Hkv, Q, D) at [start, start + Q) → K/V of [0, start + Q)."""
        if self.start > self.length:
            raise RuntimeError(f"exact cache holds {self.length} clean columns; a forward from column {self.start} "
                               "would read columns that were never computed")
        if layer_idx == len(self.keys):
            B, H, _, D = k.shape
            self.keys.append(k.new_zeros(B, H, self.capacity, D))
            self.values.append(v.new_zeros(B, H, self.capacity, D))
        end = self.start + k.shape[2]
        if end > self.capacity or k.shape[0] != self.keys[layer_idx].shape[0]:
            raise ValueError(f"exact cache of {self.capacity} columns × {self.keys[layer_idx].shape[0]} rows cannot "
                             f"take columns [{self.start}, {end}) of {k.shape[0]} rows")
        kc, vc = self.keys[layer_idx], self.values[layer_idx]
        kc[:, :, self.start:end] = k
        vc[:, :, self.start:end] = v
        return kc[:, :, :end], vc[:, :, :end]  # (B, Hkv, end, D)
