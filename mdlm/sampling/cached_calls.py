"""The network calls of the block K/V cache and of partial caching, used by the model runner (:mod:`.runner`).

``WindowLogits``: the logits of the block window only, from a model with ``supports_logits_window``.
``BlockCachedLogits``: Fast-dLLM's dual / prefix cache (:mod:`mdlm.modeling.kv_cache` holds the data structure
and explains what is exact). ``PartialCachedLogits``: Hayakawa et al. 2025's partial caching for the moment
sampler's sub-steps (our reading of it, from the paper's summary): the step's full forward stores every layer's
K/V; each later group recomputes only the step's chosen columns — exact at layer 1, an approximation from layer 2
on (a one-layer model is exact; tests/test_partial_cache.py checks both). ``BlockExactLogits``: block diffusion's
exact cache of the finished clean blocks (BD3-LM; docs/block_diffusion.md).
"""

from __future__ import annotations

from typing import Any

import torch

from mdlm.modeling.block_diffusion import decode_block_mask
from mdlm.modeling.kv_cache import (
    BlockKVCache,
    ExactPrefixKVCache,
    check_cache_mode,
    check_cache_model,
)
from mdlm.modeling.padding import default_position_ids, padding_to_attention_mask

from .adapters import extract_logits, position_ids_from_mask

Tensor = torch.Tensor


class FixedWindow:
    """The block window [lo, hi) as device tensors of fixed storage, refilled in place at each block (``set``).

    A forward that reads its columns from these tensors (instead of Python slices) launches the same kernels with
    the same arguments in every block of the same width, so one captured CUDA graph replays in all of them
    (:mod:`.greedy`). ``cols``: (W,) long canvas columns; ``flat(R, L)``: (R·W,) long flat indices r·L + col of
    those columns in an (R, L) canvas, the ``logits_positions`` of a full forward (the LM head then runs on the
    window only, as with a slice)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.span: tuple[int, int] | None = None
        self.cols: Tensor | None = None
        self._flat: dict[tuple[int, int], Tensor] = {}

    def set(self, lo: int, hi: int) -> None:
        cols = torch.arange(lo, hi, device=self.device)  # (W,)
        if self.cols is None or self.cols.shape != cols.shape:  # another width: new storage (graphs are per width)
            self.cols, self._flat = cols, {}
        else:
            self.cols.copy_(cols)
            for (R, L), buf in self._flat.items():
                buf.copy_(self._flat_of(R, L))
        self.span = (lo, hi)

    def _flat_of(self, R: int, L: int) -> Tensor:
        return (torch.arange(R, device=self.device)[:, None] * L + self.cols[None, :]).flatten()  # (R·W,)

    def flat(self, R: int, L: int) -> Tensor:
        if (R, L) not in self._flat:
            self._flat[(R, L)] = self._flat_of(R, L)
        return self._flat[(R, L)]


class WindowLogits:
    """``f(x, lo, hi) -> (R, W, V)``: logits of canvas columns [lo, hi) only, from a model with
    ``supports_logits_window`` (e.g. ``MDLMForMaskedLM``: ``logits_positions=slice``), so the LM head runs
    on the sampler's block window instead of every column. The key-padding mask and the position ids
    of the canvas are made once (one host synchronisation) and reused by every call, which keeps the
    forward free of host synchronisations (CUDA-graph capture needs that).

    ``attention_mask`` (B, L) or None; calls take the B canvas rows or 2B rows (conditional +
    unconditional CFG passes, the mask and positions repeated)."""

    def __init__(self, model: Any, attention_mask: Tensor | None):
        self.model = model
        self.pos: Tensor | None = None
        self.mask: Tensor | None = None
        if attention_mask is not None:
            self.pos = position_ids_from_mask(attention_mask)  # (B, L)
            self.mask = padding_to_attention_mask(attention_mask)  # (B, 1, 1, L) or None (nothing padded)

    @staticmethod
    def supported(model: Any) -> bool:
        return bool(getattr(model, "supports_logits_window", False))

    def __call__(self, x: Tensor, lo: int, hi: int, fixed: FixedWindow | None = None) -> Tensor:
        """Logits (R, W, V) of columns [lo, hi) of ``x`` (R, L); ``fixed``: the same columns read from its tensors."""
        pos, mask = self.pos, self.mask
        if pos is not None and x.shape[0] != pos.shape[0]:
            reps = x.shape[0] // pos.shape[0]
            pos = pos.repeat(reps, 1)
            mask = None if mask is None else mask.repeat(reps, 1, 1, 1)
        cols = slice(lo, hi) if fixed is None else fixed.flat(*x.shape)
        out = self.model(input_ids=x, attention_mask=mask, position_ids=pos, logits_positions=cols)
        return extract_logits(out).view(x.shape[0], hi - lo, -1)  # (R, W, V)


def _span_positions(B: int, L: int, lo: int, hi: int, device: torch.device) -> Tensor:
    """(B, L) bool, True on columns [lo, hi)."""
    col = torch.arange(L, device=device)
    return ((col >= lo) & (col < hi)).expand(B, L)


class BlockCachedLogits:
    """Logits of one block at a time from a model with the block KV cache (Fast-dLLM decoding).

    ``fill(x, lo, hi)`` runs the whole canvas (one NFE, L positions), stores every layer's K/V and
    returns the logits of columns [lo, hi); ``step(x, lo, hi)`` runs only columns [lo, hi) (dual, W
    positions) or [lo, L) (prefix, L − lo positions) against the cache and returns the same window's
    logits. ``positions`` counts the query columns computed per row over all calls.

    Args:
        model: an nn.Module with ``supports_block_kv_cache`` (e.g. ``MDLMForMaskedLM``), eval mode.
        mode: ``"dual"`` or ``"prefix"``.
        attention_mask: (B, L) 1 = token / 0 = padding, or None (no padding). Rows of every later
            call must be these B rows.
    """

    def __init__(self, model: Any, mode: str, attention_mask: Tensor | None):
        mode = check_cache_mode(mode)
        if mode == "none":
            raise ValueError("BlockCachedLogits needs cache mode 'dual' or 'prefix'")
        check_cache_model(model, "the block KV cache", "use cache='none' or an MDLMForMaskedLM")
        self.model, self.mode = model, mode
        self.attention_mask = attention_mask
        self.position_ids: Tensor | None = None
        if attention_mask is not None:
            self.position_ids = default_position_ids(attention_mask, attention_mask)  # (B, L), skips left padding
        # a model that takes the (B, 1, 1, L) key mask gets it made once (one host synchronisation here, none
        # per forward, so a step can be captured in a CUDA graph); any other model gets the (B, L) mask
        self._key_mask = attention_mask
        if getattr(model, "supports_logits_window", False):
            self._key_mask = padding_to_attention_mask(attention_mask)
        self.cache: BlockKVCache | None = None
        self.positions = 0
        self.calls = 0

    def _positions(self, x: Tensor) -> Tensor:
        if self.position_ids is None:
            self.position_ids = default_position_ids(x, None)  # (B, L)
        return self.position_ids

    def _columns(self, B: int, Q: int, lo: int, hi: int, device: torch.device) -> Tensor | slice:
        """Which of the Q input columns get logits: a slice where the model takes one (no host sync), else a mask."""
        if getattr(self.model, "supports_logits_window", False):
            return slice(lo, hi)
        return _span_positions(B, Q, lo, hi, device)  # (B, Q)

    @staticmethod
    def supports_fixed(model: Any, mode: str) -> bool:
        """Whether ``fill`` / ``step`` can read the window from a :class:`FixedWindow` (dual cache, a model that
        takes flat ``logits_positions``): the prefix cache's steps change width with the block."""
        return mode == "dual" and bool(getattr(model, "supports_logits_window", False))

    @torch.no_grad()
    def fill(self, x: Tensor, lo: int, hi: int, fixed: FixedWindow | None = None) -> Tensor:
        """Full forward of ``x`` (B, L): refresh the cache (in place when it holds this canvas already); logits of
        columns [lo, hi) → (B, W, V), read from ``fixed``'s tensors when given."""
        B, L = x.shape
        c = self.cache
        if c is None or not c.filled or c.length != L or c.keys[0].shape[0] != B:
            self.cache = BlockKVCache()
        self.cache.fresh_start = self.cache.fresh_columns = None
        cols = self._columns(B, L, lo, hi, x.device) if fixed is None else fixed.flat(B, L)
        out = self.model(input_ids=x, attention_mask=self._key_mask, position_ids=self._positions(x),
                         logits_positions=cols, kv_cache=self.cache)
        self.positions += L
        self.calls += 1
        return out.logits.view(B, hi - lo, -1)  # (B, W, V)

    @torch.no_grad()
    def step(self, x: Tensor, lo: int, hi: int, fixed: FixedWindow | None = None) -> Tensor:
        """Forward of the block only, against the cache filled at the block start → (B, W, V). ``fixed`` (dual
        only): the block's columns read from its tensors."""
        if self.cache is None or not self.cache.filled:
            raise RuntimeError("BlockCachedLogits.step before fill: call fill() at the block start")
        B, L = x.shape
        if self.cache.length != L:
            raise ValueError(f"the cache holds a canvas of {self.cache.length} columns, got {L}")
        if fixed is not None:  # the block's columns from the fixed tensors: every logit of the input is wanted
            if self.mode != "dual":
                raise ValueError("a fixed window needs the dual cache (prefix steps change width with the block)")
            self.cache.fresh_start, self.cache.fresh_columns = None, fixed.cols
            ids, pos, cols = x.index_select(1, fixed.cols), self._positions(x).index_select(1, fixed.cols), None
            q = hi - lo
        else:  # a slice: the block (dual) or the block and everything after it (prefix)
            q = (hi if self.mode == "dual" else L) - lo
            self.cache.fresh_start, self.cache.fresh_columns = lo, None
            ids, pos = x[:, lo:lo + q], self._positions(x)[:, lo:lo + q]
            cols = self._columns(B, q, 0, hi - lo, x.device)
        out = self.model(input_ids=ids, attention_mask=self._key_mask, position_ids=pos, logits_positions=cols,
                         kv_cache=self.cache)
        self.positions += q
        self.calls += 1
        return out.logits.view(B, hi - lo, -1)  # (B, W, V)


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


class BlockExactLogits:
    """Block-diffusion decoding with an exact K/V cache (BD3-LM): ``f(x, lo, hi) -> (R, W, V)``.

    Every call runs columns [c, hi), where [0, c) are already cached clean and [lo, hi) is the current block:
    the block's first call also computes the blocks finished since the last call (their tokens are now final,
    and under the block-causal mask their K/V depend only on clean blocks before them), later calls of the same
    block run its W columns only. Queries see keys < the end of their own block (``decode_block_mask``), so
    the logits equal an uncached forward of [clean prefix ; current block] under BD3-LM's mask. Blocks are
    aligned at the first generated column ``start`` (the same column in every row; the prompt is cut into
    clean blocks backwards from it), so a left-padded row decodes as it would alone.

    Args:
        model: an ``MDLMForMaskedLM`` with ``config.block_size`` (or any model with ``supports_block_kv_cache``
            whose attention takes a (B, 1, Q, K) bool mask and the cache's ``update``).
        attention_mask: (B, L) 1 = token / 0 = padding, or None. ``start``: first generated column.
    """

    def __init__(self, model: Any, attention_mask: Tensor | None, start: int, block_size: int):
        self.model, self.start, self.block_size = model, int(start), int(block_size)
        self.keys = None if attention_mask is None else attention_mask.bool()  # (R, L)
        self.position_ids = None if attention_mask is None else default_position_ids(attention_mask, attention_mask)
        self.cache: ExactPrefixKVCache | None = None
        self._mask_key: tuple[int, int] | None = None
        self._mask: Tensor | None = None

    def _inputs(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        pos, keys = self.position_ids, self.keys
        if pos is None:
            pos = default_position_ids(x, None)  # (R, L)
        elif pos.shape[0] != x.shape[0]:
            reps = x.shape[0] // pos.shape[0]
            pos, keys = pos.repeat(reps, 1), keys.repeat(reps, 1)
        return pos, keys

    @torch.no_grad()
    def __call__(self, x: Tensor, lo: int, hi: int) -> Tensor:
        if self.cache is None:
            self.cache = ExactPrefixKVCache(capacity=x.shape[1])
        first = self.cache.length
        if lo < first:
            raise RuntimeError(f"block [{lo}, {hi}) starts inside the cached clean prefix [0, {first})")
        pos, keys = self._inputs(x)
        if self._mask_key != (first, hi):  # one mask per block (and one for its first call)
            self._mask = decode_block_mask(first, hi, self.start, self.block_size, keys, x.device)
            self._mask_key = (first, hi)
        self.cache.start = first
        out = self.model(input_ids=x[:, first:hi], attention_mask=self._mask, position_ids=pos[:, first:hi],
                         logits_positions=slice(lo - first, hi - first), kv_cache=self.cache)
        self.cache.length = lo  # columns before the block are clean and final; the block's own K/V are not
        return extract_logits(out)  # (R, W, V)
