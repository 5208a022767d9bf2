"""LLaDA's reference decoding loop, re-implemented as the baseline of the decoding benchmark.

Nie et al. 2025 ("Large Language Diffusion Models"), their ``generate()``: semi-autoregressive blocks of
``block_length`` columns, ``steps // num_blocks`` steps per block; at every step one **uncached** forward of the
whole canvas, logits of **every** column, (no Gumbel noise at temperature 0) ``x0 = argmax``, the confidence
``p(x0)`` from a float64 softmax over the full vocabulary, columns right of the current block excluded, and the
``k`` most confident masked columns committed, ``k`` = the block's masked count split evenly over its steps
(the remainder to the earliest steps). This is what ``eval/decode_bench.py`` times as the ``llada`` row.

Differences from their code, all chosen so that the loop is a fair baseline for this project's models:
``suppress_ids`` (always [MASK], and e.g. pad) and ids ≥ ``vocab_size`` get −inf logits (LLaDA masks nothing;
its models practically never predict [MASK]); an ``attention_mask`` is passed for left-padded ragged prompts;
the per-row top-k is vectorised (rows of one batch share their block and step plan, so ``k`` is the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
LogitsFn = Callable[[Tensor, Tensor | None], Tensor]


class LoopDeadline(RuntimeError):
    """The loop ran past its ``deadline`` (a ``time.perf_counter()`` value)."""


@dataclass
class LoopResult:
    sequences: Tensor  # (B, L) the canvas after the last step run
    nfe: int  # forwards run (one per step)


def transfer_counts(masked: int, steps: int) -> list[int]:
    """LLaDA's ``get_num_transfer_tokens``: ``masked`` tokens over ``steps`` steps, ``masked // steps`` each and
    one more for the first ``masked % steps`` steps."""
    base, rem = divmod(masked, steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


def commit_top_k(x: Tensor, logits: Tensor, mask_id: int, end: int, k: int) -> Tensor:
    """One LLaDA step on the canvas ``x`` (B, L) given ``logits`` (B, L, V) (suppressed ids already −inf):
    commit, per row, the ``k`` most confident masked columns left of ``end``. Returns the new canvas."""
    masked = x == mask_id  # (B, L)
    x0 = logits.argmax(dim=-1)  # (B, L)
    p = torch.softmax(logits.double(), dim=-1)  # (B, L, V) float64, as LLaDA
    conf = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # (B, L)
    conf[:, end:] = float("-inf")
    conf = torch.where(masked, conf, torch.full_like(conf, float("-inf")))
    idx = conf.topk(k, dim=-1).indices  # (B, k)
    return x.scatter(1, idx, x0.gather(1, idx))


def llada_generate(
    fn: LogitsFn, x: Tensor, *, mask_id: int, gen_length: int, block_length: int, steps: int,
    attention_mask: Tensor | None = None, suppress_ids: Sequence[int] = (), vocab_size: int | None = None,
    max_steps: int | None = None, deadline: float | None = None, sync: Callable[[], None] | None = None,
) -> LoopResult:
    """LLaDA's low-confidence greedy loop over the last ``gen_length`` columns of ``x`` (B, L), all [MASK] there.

    ``gen_length`` must be a multiple of ``block_length`` and ``steps`` a multiple of the number of blocks
    (LLaDA's constraints). ``max_steps`` stops after that many steps (a short warm-up or a timing probe);
    ``deadline`` raises :class:`LoopDeadline` once ``time.perf_counter()`` passes it (checked after each step,
    after ``sync()``)."""
    L = x.shape[1]
    if gen_length % block_length or steps % (gen_length // block_length):
        raise ValueError(f"LLaDA's loop needs gen_length ({gen_length}) a multiple of block_length ({block_length}) "
                         f"and steps ({steps}) a multiple of the number of blocks")
    x = x.clone()
    P, n_blocks = L - gen_length, gen_length // block_length
    per_block = steps // n_blocks
    banned = torch.tensor(sorted({mask_id, *suppress_ids}), device=x.device)
    nfe = 0
    for b in range(n_blocks):
        start, end = P + b * block_length, P + (b + 1) * block_length
        masked = int((x[0, start:end] == mask_id).sum())  # every row has the same block (LLaDA layout)
        for k in transfer_counts(masked, per_block):
            if max_steps is not None and nfe >= max_steps:
                return LoopResult(x, nfe)
            logits = fn(x, attention_mask)  # (B, L, V): every column, no cache
            logits = logits.index_fill(-1, banned[banned < logits.shape[-1]], float("-inf"))
            if vocab_size is not None and vocab_size < logits.shape[-1]:
                logits[..., vocab_size:] = float("-inf")
            nfe += 1
            if k > 0:
                x = commit_top_k(x, logits, mask_id, end, k)
            if deadline is not None:
                if sync is not None:
                    sync()
                if time.perf_counter() > deadline:
                    raise LoopDeadline(f"stopped after {nfe} of {steps} steps")
    return LoopResult(x, nfe)


def block_aligned_fn(model, gen_start: int, block_size: int) -> LogitsFn:
    """The plain forward of a block-diffusion model (BD3-LM: block-causal by ``position // block_size``) with its
    blocks aligned at the first generated column ``gen_start``, as its sampler aligns them: every row's positions
    are shifted by a constant so that ``gen_start`` begins a block. RoPE sees only position differences, so the
    shift changes nothing but where the blocks fall. Returns ``fn(x (B, L), attention_mask (B, L)) -> (B, L, V)``."""

    def fn(x: Tensor, attention_mask: Tensor | None) -> Tensor:
        am = attention_mask if attention_mask is not None else torch.ones_like(x)
        pos = (am.long().cumsum(-1) - 1).clamp_min(0)  # (B, L) positions that skip left padding
        shift = (-pos[:, gen_start]) % block_size  # (B,) so that gen_start's position is a multiple of block_size
        out = model(input_ids=x, attention_mask=am, position_ids=pos + shift[:, None])
        return out.logits if hasattr(out, "logits") else out

    return fn
