"""Timing one decoding row of the benchmark (eval/decode_bench.py) within a wall-time budget.

A row is timed as the median of ``repeats`` runs (the GPU synchronised before and after each) after one warm-up
that decodes only the first block of the same (B, L) canvas (the same shapes, so kernels, allocator pools and
CUDA-graph pools are warm, at 1/n_blocks of the cost). The warm-up also gives the estimate the budget is checked
against: ``warm-up seconds × n_blocks`` (an over-estimate: it includes the first-call costs). A row estimated
over ``max_seconds`` is skipped with that note; ``repeats`` is cut so that they fit the budget. A ``torch_compile``
row, and any row with ``cuda_graphs`` and ``launch_ahead`` on (launch-ahead needs two blocks; its Triton advance
compiles at its first launch), first decodes its first two blocks once, untimed (a compilation is noted when it took
over a second), so that no kind of forward or kernel is compiled inside a timed run.
LLaDA's loop costs the same at every step (one full forward of the same canvas), so when its full runs do not
fit the budget its time is ``steps × seconds per step`` measured over one block, marked ``estimated``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..sampling import MDLMGenerationConfig, generate
from .llada_loop import llada_generate

Tensor = torch.Tensor
# blocks decoded by a torch_compile row's first (compiling) call: enough to meet every kind of forward the sampler
# makes (no cache: one; the dual cache: the first block's fill and steps, then the in-place refill of a later block)
COMPILE_WARMUP_BLOCKS = 2


@dataclass
class Case:
    """One (batch, generation length) canvas; every row of the benchmark decodes it."""

    canvas: Tensor  # (B, L) prompt (left-padded) + G × [MASK]
    attention_mask: Tensor  # (B, L)
    prompt_mask: Tensor  # (B, L)
    gen_length: int
    block_length: int
    mask_id: int
    suppress: list[int]
    vocab_size: int | None
    eos_id: int | None = None  # given to the sampler only by rows that ask for the EOS early stop

    @property
    def n_blocks(self) -> int:
        return self.gen_length // self.block_length

    def first_block(self) -> Tensor:
        """(B, L) bool: the positions of the first block (the warm-up decodes only these)."""
        return self.first_blocks(1)

    def first_blocks(self, n: int) -> Tensor:
        """(B, L) bool: the positions of the first ``n`` blocks (at most all of them)."""
        m = torch.zeros_like(self.canvas, dtype=torch.bool)
        lo = self.canvas.shape[1] - self.gen_length
        m[:, lo:lo + min(n, self.n_blocks) * self.block_length] = True
        return m


@dataclass
class Timed:
    sequences: Tensor | None  # (B, L), None when only estimated
    seconds: float  # median wall time of one full decode
    repeats: int  # timed full runs (0: estimated)
    nfe: int
    positions: int | None = None
    graph_replays: int | None = None
    note: str = ""
    capture_failures: int = 0  # CUDA-graph captures that failed (those blocks decoded eagerly), warm-up included
    launch_ahead: str | None = None  # the block advance of launch-ahead decoding ("triton", "torch"), None: not used
    ahead_reads: float | None = None  # launch-ahead's host read-backs per decode


def synchronizer(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> tuple[object, float]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def fit_repeats(estimate: float, repeats: int, max_seconds: float) -> int:
    """How many of ``repeats`` full runs of ``estimate`` seconds fit ``max_seconds`` (0: none)."""
    return min(repeats, int(max_seconds // estimate)) if estimate > 0 else repeats


def _timed_runs(fn: Callable[[], Any], n: int, repeats: int, sync: Callable[[], None]) -> tuple[Any, float, str]:
    """(last output, median seconds, note) of ``n`` timed runs of ``fn``; the note says when the budget cut repeats."""
    times, out = [], None
    for _ in range(n):
        out, dt = _timed(fn, sync)
        times.append(dt)
    return out, statistics.median(times), "" if n == repeats else f"{n} of {repeats} repeats (budget)"


def time_generate(model, case: Case, config: MDLMGenerationConfig, *, repeats: int, max_seconds: float,
                  sync: Callable[[], None]) -> Timed:
    """A sampler row: warm-up on the first block (a ``torch_compile`` row or one with ``cuda_graphs`` and
    ``launch_ahead``: first an untimed call over its first two blocks), the budget check, then the median of the
    timed runs."""

    failed = []  # per generation: CUDA-graph captures that failed (those steps ran eagerly)

    def run(generate_mask: Tensor | None, cfg: MDLMGenerationConfig = config):
        with torch.inference_mode():
            out = generate(model, case.canvas, mask_id=case.mask_id, config=cfg, generate_mask=generate_mask,
                           attention_mask=case.attention_mask, cond_mask=case.prompt_mask,
                           suppress_tokens=case.suppress, vocab_size=case.vocab_size,
                           eos_id=case.eos_id if cfg.eos_early_stop else None,
                           generator=torch.Generator(device=case.canvas.device).manual_seed(0))
        failed.append(out.graph_capture_failures)
        return out

    warm_config = dataclasses.replace(config, steps=case.block_length)  # the first block at one token per step
    notes, first = [], None
    # a shape's first call compiles: a one-off cost, kept out of the timed runs. Two blocks: the dual cache's second
    # block refills its cache in place, a graph of its own (block 1 alone would leave it to be compiled inside the
    # first timed run — tens of seconds on a GPU), and launch-ahead (two blocks or more) compiles its Triton advance
    if config.torch_compile or (config.launch_ahead and config.cuda_graphs):
        n = min(COMPILE_WARMUP_BLOCKS, case.n_blocks)
        cover = dataclasses.replace(config, steps=n * case.block_length)
        _, first = _timed(lambda: run(case.first_blocks(n), cover), sync)
    _, warm = _timed(lambda: run(case.first_block(), warm_config), sync)
    if config.torch_compile and first - warm > 1.0:  # it compiled (later prompts reuse the compiled graphs): say so
        notes.append(f"first call {first:.1f} s (torch.compile)")
    estimate = warm * case.n_blocks
    n = fit_repeats(estimate, repeats, max_seconds)
    if n == 0:
        return Timed(None, estimate, 0, 0, note="; ".join(notes + [
            f"skipped: estimated {estimate:.1f} s a run (first-block warm-up {warm:.2f} s x {case.n_blocks} blocks) "
            "> --max-seconds-per-row"]), capture_failures=sum(failed))
    out, median, note = _timed_runs(lambda: run(None), n, repeats, sync)
    if sum(failed):
        notes.append(f"{sum(failed)} CUDA-graph capture(s) failed: eager fallback")
    note = "; ".join(x for x in (note, *notes) if x)
    return Timed(out.sequences, median, n, out.nfe, out.positions, out.graph_replays, note, sum(failed),
                 launch_ahead=out.launch_ahead, ahead_reads=out.ahead_reads if out.launch_ahead else None)


def time_llada(fn, case: Case, *, steps: int, repeats: int, max_seconds: float, sync: Callable[[], None]) -> Timed:
    """LLaDA's loop: warm-up + per-step probe over the first block; full timed runs if they fit, else the estimate."""
    kw = {"mask_id": case.mask_id, "gen_length": case.gen_length, "block_length": case.block_length, "steps": steps,
          "attention_mask": case.attention_mask, "suppress_ids": case.suppress, "vocab_size": case.vocab_size}
    probe_steps = max(1, steps // case.n_blocks)

    def run(max_steps: int | None):
        with torch.inference_mode():
            return llada_generate(fn, case.canvas, max_steps=max_steps, **kw)

    _timed(lambda: run(2), sync)  # warm-up
    _, probe = _timed(lambda: run(probe_steps), sync)
    estimate = probe / probe_steps * steps
    n = fit_repeats(estimate, repeats, max_seconds)
    if n == 0:
        return Timed(None, estimate, 0, steps, case.canvas.shape[1] * steps,
                     note=f"estimated: {probe / probe_steps * 1000:.1f} ms a step over {probe_steps} steps x {steps} "
                          f"steps (a full run would exceed --max-seconds-per-row)")
    out, median, note = _timed_runs(lambda: run(None), n, repeats, sync)
    return Timed(out.sequences, median, n, out.nfe, case.canvas.shape[1] * out.nfe, note=note)


def merge_prompt_runs(runs: list[Timed], gen_length: int) -> Timed:
    """One row timed on K prompts, each decoded alone at batch 1, as one row: ``seconds`` the mean time of a decode
    (so B·G / seconds = K·G / total time and a speedup of two merged rows = ratio of their total times), ``nfe``
    the mean NFE (rounded to 0.1), ``sequences`` the K generated parts stacked, (K, G) — None when any run was
    only estimated —, ``repeats`` the fewest of any prompt, the counts summed and the notes joined; launch-ahead's
    advance and its read-backs the mean per decode (both None unless every prompt launched ahead)."""
    if not runs:
        raise ValueError("merge_prompt_runs needs at least one run")
    seqs = None if any(t.sequences is None for t in runs) else torch.cat([t.sequences[:, -gen_length:] for t in runs])

    def total(field: str) -> int | None:
        vals = [getattr(t, field) for t in runs]
        return None if any(v is None for v in vals) else sum(vals)

    notes = list(dict.fromkeys(t.note for t in runs if t.note))
    advances = sorted({t.launch_ahead for t in runs if t.launch_ahead})  # one per process (a failed kernel: torch)
    every = all(t.launch_ahead for t in runs)  # a prompt only estimated (or not launched ahead) names none
    reads = [t.ahead_reads for t in runs]
    return Timed(seqs, statistics.fmean(t.seconds for t in runs), min(t.repeats for t in runs),
                 round(statistics.fmean(t.nfe for t in runs), 1), total("positions"), total("graph_replays"),
                 "; ".join(notes), sum(t.capture_failures for t in runs),
                 launch_ahead="+".join(advances) if every else None,
                 ahead_reads=round(statistics.fmean(reads), 1) if every else None)
