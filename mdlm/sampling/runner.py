"""The model runner: every way the sampler calls the network, and the count of what those calls cost.

One object per :func:`~mdlm.sampling.generate` call. The loop asks it for the logits of the current block's
window (``window``) and, for the moment sampler's sub-steps, of a few scattered columns (``columns``); the
runner decides how to compute them:

* full canvas: ``logits = f(x)`` for any callable (:func:`~mdlm.sampling.adapters.as_logits_fn`), or, for a
  model with ``supports_logits_window`` (``MDLMForMaskedLM``), the LM head on the window's columns only;
* block K/V cache (``cache_implementation`` "dual" / "prefix", Fast-dLLM): one full forward at each block
  start fills the cache, the block's later steps run the block (dual) or the block and its suffix (prefix);
* partial cache (``partial_cache``): full forwards fill a cache that the sub-steps query at chosen columns;
* exact block cache (``cache_implementation="block_exact"``, the default for a block-diffusion model, i.e. one
  with ``config.block_size``): blocks of the model's block size, the finished clean blocks' K/V cached exactly
  (BD3-LM; :class:`~.cached_calls.BlockExactLogits`): a step runs the current block's columns only.

Classifier-free guidance is written once here: the unconditional canvas (condition positions → [MASK]) runs
as B more rows of the same call (``guidance_batch``) or as a second call; a K/V cache keeps the unconditional
rows' cache in step with the conditional one. Logits are kept until the canvas changes (``invalidate``) or the
block ends, so a step whose canvas did not change costs nothing.

Counters: ``nfe`` — network evaluations per sequence (+1 per conditional and +1 per unconditional pass, also
when both are one call of 2B rows); ``positions`` — canvas columns run through the network per sequence,
summed over passes (L per full forward, W per dual-cached step, L − lo per prefix-cached step, k per partial
query).
"""

from __future__ import annotations

from typing import Any

import torch

from mdlm.modeling.kv_cache import supports_kv_cache

from .adapters import as_logits_fn
from .cached_calls import BlockCachedLogits, BlockExactLogits, FixedWindow, PartialCachedLogits, WindowLogits
from .cfg import unconditional_input

Tensor = torch.Tensor


class ModelRunner:
    """Logits of the canvas for the sampler loop (see the module docstring).

    Args:
        model: ``f(x) -> logits``, ``f(x, attention_mask)``, an HF-style model, or (for any cache) the model
            itself with ``supports_block_kv_cache``.
        attention_mask: (B, L) long, 1 = token / 0 = left padding, or None.
        cond: (B, L) bool, condition positions (masked in the unconditional pass).
        mask_id: id of [MASK].
        cache: "none", "dual", "prefix" or "block_exact" (the only one, and the default, for a block-diffusion
            model); partial: partial caching for the sub-steps.
        guidance: classifier-free guidance is on (an unconditional pass may be asked for).
        batch: run the conditional and unconditional passes as one call of 2B rows.
        gen: (B, L) bool, the positions to generate (needed by ``block_exact``: where its blocks start).
        compiled: the model's forward is ``torch.compile``'d (:mod:`.compiled`): where the runner can, it reads every
            block's window from fixed tensors (:meth:`use_fixed_window`), so TorchDynamo does not recompile for each
            block's Python slice.
    """

    def __init__(self, model: Any, attention_mask: Tensor | None, cond: Tensor, mask_id: int, *, cache: str = "none",
                 partial: bool = False, guidance: bool = False, batch: bool = True, gen: Tensor | None = None,
                 compiled: bool = False):
        self.am, self.cond, self.mask_id = attention_mask, cond, mask_id
        self.compiled = compiled
        cache = resolve_cache(model, cache)
        if partial and cache == "block_exact":
            raise ValueError("partial_cache cannot be combined with block_exact decoding (a block-diffusion model)")
        self.exact: list[BlockExactLogits] = []
        self.guidance, self.batch = guidance, batch
        self.fn = as_logits_fn(model)  # full forwards (and the exact sub-steps)
        self.window_fn = WindowLogits(model, attention_mask) if WindowLogits.supported(model) else None
        self.partial: PartialCachedLogits | None = None
        self.blocks: list[BlockCachedLogits] = []
        if partial:
            _need_model(model, "partial_cache")
            self.partial = PartialCachedLogits(model)
            self.window_fn = None
        elif cache == "block_exact":
            _need_model(model, "cache_implementation='block_exact'")
            am2 = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
            n = 2 if guidance and not batch else 1
            start, size = generation_start(gen), model_block_size(model)
            self.exact = [BlockExactLogits(model, am2 if guidance and batch else attention_mask, start, size)
                          for _ in range(n)]
            self.window_fn = None
        elif cache != "none":
            _need_model(model, f"cache_implementation={cache!r}")
            am2 = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
            n = 2 if guidance and not batch else 1
            self.blocks = [BlockCachedLogits(model, cache, am2 if guidance and batch else attention_mask)
                           for _ in range(n)]
        self.span: tuple[int, int] | None = None
        self.fixed: FixedWindow | None = None  # the window as tensors (use_fixed_window)
        self.c: Tensor | None = None
        self.u: Tensor | None = None
        self.nfe = 0
        self.positions = 0
        if compiled:
            self.use_fixed_window(cond.device)  # where the mode allows it (no cache, dual); else slices as before

    # ------------------------------------------------------------------ state
    def counters(self) -> list[int]:
        return [self.nfe, self.positions]

    def set_counters(self, values: list[int]) -> None:
        self.nfe, self.positions = values

    def invalidate(self) -> None:
        """The canvas changed: the kept logits are stale."""
        self.c = self.u = None

    def start_block(self) -> None:
        """The kept logits belong to the previous block's window; a K/V cache refills at the next call."""
        self.span = None
        self.invalidate()

    def use_fixed_window(self, device: torch.device) -> bool:
        """Read every block's window from fixed device tensors (:class:`~.cached_calls.FixedWindow`, refilled by
        :meth:`set_window`), so each kind of call is the same kernels in every block of the same width and one
        CUDA graph serves them all. Possible without a cache (a model with ``supports_logits_window``) and with the
        dual cache, no partial cache; returns whether it is on."""
        ok = self.partial is None and not self.exact and (
            (not self.blocks and self.window_fn is not None)
            or (bool(self.blocks) and BlockCachedLogits.supports_fixed(self.blocks[0].model, self.blocks[0].mode)))
        if ok and self.fixed is None:
            self.fixed = FixedWindow(device)
        return ok

    def set_window(self, lo: int, hi: int) -> None:
        """The block's window [lo, hi) into the fixed tensors (:meth:`use_fixed_window`)."""
        self.fixed.set(lo, hi)

    def fills_next(self, lo: int, hi: int) -> bool:
        """Whether the next call for window [lo, hi) is a K/V cache's full refill (a block's first call)."""
        return bool(self.blocks or self.exact) and self.span != (lo, hi)

    def replayed(self, lo: int, hi: int) -> None:
        """A CUDA-graph replay ran a call for window [lo, hi) (a K/V cache now holds this block)."""
        if self.blocks or self.exact:
            self.span = (lo, hi)

    # ------------------------------------------------------------------ calls
    def _am(self, rows: int) -> Tensor | None:
        am = self.am
        return am if am is None or rows == am.shape[0] else am.repeat(rows // am.shape[0], 1)  # (2B, L)

    def _call(self, x: Tensor, lo: int, hi: int, fill: bool, which: int) -> Tensor:
        """Logits (R, W, V) of columns [lo, hi) for the R rows of ``x`` (B, or 2B with the unconditional rows);
        ``which`` picks the block cache of the pass (0: conditional or both, 1: unconditional)."""
        passes, L = x.shape[0] // self.cond.shape[0], x.shape[1]
        self.nfe += passes
        if self.exact:
            ex = self.exact[which]
            self.positions += passes * (hi - (ex.cache.length if ex.cache is not None else 0))
            return ex(x, lo, hi)
        if self.compiled and self.fixed is not None and self.fixed.span != (lo, hi):
            self.fixed.set(lo, hi)  # a slice would be a constant of the compiled graph: one recompilation per block
        fixed = self.fixed if self.fixed is not None and self.fixed.span == (lo, hi) else None
        if self.blocks:
            cache = self.blocks[which]
            q = L if fill else (hi - lo if cache.mode == "dual" else L - lo)
            self.positions += passes * q
            return cache.fill(x, lo, hi, fixed) if fill else cache.step(x, lo, hi, fixed)
        self.positions += passes * L
        if self.partial is not None:
            return self.partial.fill(x, self._am(x.shape[0]))[:, lo:hi]
        if self.window_fn is not None:
            return self.window_fn(x, lo, hi, fixed)
        return self.fn(x, self._am(x.shape[0]))[:, lo:hi]

    def _both(self, x: Tensor) -> Tensor:
        return torch.cat([x, unconditional_input(x, self.cond, self.mask_id)])  # (2B, L)

    def window(self, x: Tensor, want_u: bool, lo: int, hi: int) -> tuple[Tensor, Tensor | None]:
        """Conditional and (when ``want_u``) unconditional logits of columns [lo, hi): (B, W, V) each."""
        need_c, need_u = self.c is None, want_u and self.u is None
        if not (need_c or need_u):
            return self.c, self.u  # type: ignore[return-value]
        cached = bool(self.blocks or self.exact)
        fill = cached and self.span != (lo, hi)
        if cached:
            self.span = (lo, hi)
            if self.guidance and (self.batch or fill):  # the unconditional cache follows the conditional one
                need_c = need_u = True
        if need_c and need_u and self.batch:
            self.c, self.u = self._call(self._both(x), lo, hi, fill, 0).chunk(2, dim=0)
        else:
            if need_c:
                self.c = self._call(x, lo, hi, fill, 0)
            if need_u:
                self.u = self._call(unconditional_input(x, self.cond, self.mask_id), lo, hi, fill, 1)
        return self.c, self.u  # type: ignore[return-value]

    def columns(self, xs: Tensor, sel: tuple[Tensor, Tensor], guided: bool, lo: int, idx: Tensor,
                slot: Tensor) -> tuple[Tensor, Tensor | None]:
        """Conditional (and unconditional) logits (Ms, V) at the selected window positions ``sel`` of canvas
        ``xs``: a full forward (exact), or with partial caching the chosen columns ``idx`` (B, K, absolute) only
        against the cache of the step's forward (``slot``: (B, W) position of a window column in ``idx``)."""
        if self.exact:
            raise ValueError("moment sub-steps (moment_substeps > 1) are not supported with block_exact decoding")
        B, L = xs.shape
        b, w = sel
        rows = 2 if guided else 1
        x_in = self._both(xs) if guided else xs  # (rows·B, L)
        self.nfe += rows
        if self.partial is None:
            self.positions += rows * L
            out = self.fn(x_in, self._am(rows * B))  # (rows·B, L, V)
            c, u = out.chunk(2, dim=0) if guided else (out, None)
            return c[b, lo + w], (None if u is None else u[b, lo + w])
        cache = self.partial.cache
        if cache is None or cache.keys[0].shape[0] != rows * B:  # the step's forward cached other rows: refill
            self.partial.fill(x_in, self._am(rows * B))
            self.nfe += rows
            self.positions += rows * L
        self.positions += rows * idx.shape[1]
        q = self.partial.query(x_in, self._am(rows * B), idx.repeat(rows, 1))  # (rows·B, K, V)
        c, u = q.chunk(2, dim=0) if guided else (q, None)
        s = slot[b, w]  # (Ms,)
        return c[b, s], (None if u is None else u[b, s])


def _need_model(model: Any, what: str) -> None:
    if supports_kv_cache(model):
        return
    if isinstance(model, torch.nn.Module):  # a model without the interface, e.g. an adapted HF causal LM
        raise ValueError(
            f"{what} needs a model with the K/V cache interface (supports_block_kv_cache, e.g. MDLMForMaskedLM); "
            f"{type(model).__name__} has none: decode it without a cache (cache_implementation='none')")
    raise ValueError(
        f"{what} needs the model itself with the K/V cache interface (supports_block_kv_cache, e.g. "
        f"MDLMForMaskedLM), got {type(model).__name__}: a plain callable f(x) can only run full forwards; "
        "pass the model, not a wrapped function, or turn the cache off")


def model_block_size(model: Any) -> int | None:
    """The block size of a block-diffusion model (``config.block_size``), None for any other model or callable."""
    size = getattr(getattr(model, "config", None), "block_size", None)
    return int(size) if size else None


def resolve_cache(model: Any, requested: str) -> str:
    """The cache mode a model decodes with: a block-diffusion model always uses ``block_exact`` (its default); a
    fully bidirectional one may not (ValueError)."""
    size = model_block_size(model)
    if size is None:
        if requested == "block_exact":
            raise ValueError("cache_implementation='block_exact' needs a block-diffusion model (config.block_size set, "
                             "e.g. recipes/train_text.py --objective bd3); this model is fully bidirectional: use "
                             "none, prefix or dual")
        return requested
    if requested not in ("none", "block_exact"):
        raise ValueError(f"a block-diffusion model (block_size {size}) decodes with cache_implementation='block_exact' "
                         f"(its default, exact), not {requested!r}")
    return "block_exact"


def decode_block_length(model: Any, block_length: int | None) -> int | None:
    """The sampler's block length: the model's block size for a block-diffusion model (``block_length`` must be
    None or equal to it), else ``block_length`` unchanged."""
    size = model_block_size(model)
    if size is None or block_length in (None, size):
        return size if size is not None else block_length
    raise ValueError(f"a block-diffusion model decodes blocks of its block_size ({size}); got block_length="
                     f"{block_length}: leave it unset or set it to {size}")


def generation_start(gen: Tensor | None) -> int:
    """First generated column, the same in every row that generates anything; ValueError unless every row's
    generated positions are one run of columns starting there (what block-exact decoding aligns its blocks to)."""
    if gen is None:
        raise ValueError("block_exact decoding needs the generated positions (gen)")
    rows = gen.any(dim=1)  # (B,)
    col = torch.arange(gen.shape[1], device=gen.device)  # (L,)
    first = torch.where(gen, col, gen.shape[1]).min(dim=1).values  # (B,)
    start = int(first[rows].min()) if bool(rows.any()) else 0
    run = (col >= start) & (col < start + gen.sum(dim=1, keepdim=True))  # (B, L)
    if bool((run != gen).any()):
        raise ValueError("block_exact decoding needs each row's generated positions to be one run of columns that "
                         "starts at the same column in every row (left-padded prompts, then [MASK]s)")
    return start
