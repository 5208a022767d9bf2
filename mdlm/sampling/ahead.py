"""Launch-ahead decoding: the block's progress kept on the device, so an adaptive greedy step needs no host sync.

A threshold, factor or EB step (:mod:`.fused_step`) commits a number of tokens only the device knows, so the host
loop of :mod:`.greedy` reads a flag back after every step ("is the block filled?") before it launches the next
one, and at batch 1 the GPU idles while the host learns the answer and launches again.

Here every step also advances the block on the device (:func:`advance_buffers`, inside the step's CUDA graph):
after the commit, a block with nothing masked left moves the window to the next block (its columns, block mask and
count table are rows of tables made once per generation), and a step after the last block commits nothing. The
host launches ``blocks left`` steps at a time — every unfinished block needs one step at least, so none is wasted —
and reads the state (block, step in block) back once per such run. Each read still waits for the queued
steps, so the GPU idles once per read instead of once per step: 43 reads instead of 352 steps for 32 blocks of 11
steps each, and no saving with one block (not used there). The commits, the canvas, the steps and the NFE are those
of the per-step read-back (tests/test_launch_ahead.py).

Measured on one H200 (the distilled 125M MDM, batch 1, 1,024 tokens, block 32, compiled, CUDA graphs, 8 prompts;
docs/benchmarks/decoding.md): a threshold step 1.215 ms reading back after every step → 1.134 ms launched ahead
(2,334 → 2,500 tokens/s, the same tokens and NFE); a one-token step of the same forward, which never reads back,
1.053 ms. The advance itself (``eval/bench_advance.py``, one CUDA graph replayed): 22.9 µs a step as the 21 PyTorch
kernels of :func:`advance_buffers`, 7.9 µs as the one kernel of :mod:`.ahead_triton` (the default on CUDA; the
environment variable ``MDLM_AHEAD_ADVANCE`` = auto, torch or triton chooses).

It applies (``MDLMGenerationConfig.launch_ahead``, on by default) to the greedy step (temperature 0, confidence
``prob``, no guidance or re-masking) with a rule that needs the flag (a threshold, ``fast_dllm``, ``eb``), with
``cuda_graphs`` (and ``cuda_graph_reuse``: one graph for every block), no EOS policy (``stop_at_eos`` with an EOS
id, ``eos_early_stop``: they fill later blocks, so a block's steps would no longer be bounded below), no K/V cache
(a cached block's first call is another kind of step), a model that reads its window from device tensors
(``supports_logits_window``), two blocks or more that all span the same number of columns (left-padded prompts and
a generation length that is a multiple of ``block_length``, every generated position masked), and no callback,
streamer or history (they want the canvas of every step on the host). Otherwise the loop of :mod:`.greedy` runs,
unchanged, without a word.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from typing import Callable

import torch

from .blocks import Block
from .graphs import capture_counted
from .greedy import GreedyStep

Tensor = torch.Tensor


def launch_ahead_applies(stepper: object, per_step_output: bool) -> bool:
    """Whether :class:`LaunchAhead` can run this generation, but for its blocks (:func:`worth_it`; the module docstring
    lists the conditions; ``per_step_output``: a callback, streamer or history wants every step's canvas)."""
    if not isinstance(stepper, GreedyStep) or per_step_output:
        return False
    run, runner = stepper.run, stepper.run.runner
    no_cache = not runner.blocks and not runner.exact and runner.partial is None and runner.window_fn is not None
    # with CUDA graphs the advance is inside the step's one launch (on a CPU they do nothing: the same loop, eager);
    # on a GPU without them the advance (1 to 21 eager launches a step) is untimed: the per-step read-back stays
    graphs = bool(run.config.cuda_graphs) and (stepper.graphs is None or stepper.graphs.reuse)
    return (bool(run.config.launch_ahead) and stepper.synced and run.eos_id is None and run.stop_ids is None
            and no_cache and graphs)


def worth_it(blocks: list[Block]) -> bool:
    """Two blocks or more (one block saves no read-back: each of its steps needs one), all of one window width (one
    set of window tensors, one graph)."""
    return len(blocks) >= 2 and len({b.hi - b.lo for b in blocks}) == 1


def advance_buffers(state: Tensor, left: Tensor, cols_t: Tensor, flat_t: Tensor, blk_t: Tensor, counts_t: Tensor,
                    cols_bufs: tuple[Tensor, ...], flat_buf: Tensor, blk_buf: Tensor, n_after_buf: Tensor) -> None:
    """The block advance after a step, written into the step's input buffers (device ops only, no host sync; 21
    small kernels, recorded in the step's CUDA graph; :func:`.ahead_triton.advance_triton` does the same in one).
    Not compiled: TorchDynamo specialised the tables' block count NB (``dynamic=True`` notwithstanding; its recompile
    log: "tensor 'blk_t' size mismatch at index 0. expected 2, actual 5"), so a generation with another number of
    blocks (a benchmark's warm-up over its first blocks, then the whole canvas) recompiled inside the timed run.

    Args:
        state: (2,) long [block, step in block], updated in place; block == NB: the generation is done (the host
            launches no step then: every block it counts on needs one at least; one would commit nothing).
        left: () long, masked positions left in the block after the step (0: the block is filled: next block).
        cols_t: (NB, W) long, each block's canvas columns; flat_t: (NB, B·W) long, the same as flat indices
            b·L + column (the LM head's ``logits_positions``); blk_t: (NB, B, W) bool, each block's positions;
        counts_t: (NB, S+1, B) long, masked positions each block's schedule leaves after each step (0 after its S_b).
        cols_bufs, flat_buf, blk_buf, n_after_buf: the buffers the next step reads ((W,), (B·W,), (B, W), (B,)).
    """
    nb, s_max = blk_t.shape[0], counts_t.shape[1] - 1
    filled = left == 0  # () the block has no masked position left: the next step starts the next block
    block = state[0] + filled.long()
    i = torch.where(filled, torch.zeros_like(state[1]), state[1] + 1)
    state.copy_(torch.stack([block, i]))
    k = block.clamp_max(nb - 1).view(1)  # (1,) the block the next step reads (the last one once finished)
    j = (i + 1).clamp_max(s_max).view(1)  # (1,) the schedule's count after the next step
    cols = cols_t.index_select(0, k)[0]  # (W,)
    for buf in cols_bufs:
        buf.copy_(cols)
    flat_buf.copy_(flat_t.index_select(0, k)[0])
    blk_buf.copy_(blk_t.index_select(0, k)[0])
    n_after_buf.copy_(counts_t.index_select(0, k)[0].index_select(0, j)[0])


ADVANCE_BACKENDS = ("auto", "torch", "triton")
# the Triton advance's first launch in this process: "ok" once one worked, "failed" its error (then PyTorch ops)
KERNEL: dict = {"ok": False, "failed": None}


def advance_backend(device: torch.device) -> str:
    """Which advance runs on ``device``: "triton" (:func:`.ahead_triton.advance_triton`, one kernel) on CUDA when
    Triton imports, its first launch in this process has not failed and ``TRITON_INTERPRET`` is not 1 (the
    interpreter's host copies would fail a CUDA-graph capture), else "torch" (:func:`advance_buffers`). The
    environment variable ``MDLM_AHEAD_ADVANCE`` (auto, torch, triton) forces one.

    Raises:
        ValueError: an unknown ``MDLM_AHEAD_ADVANCE``. RuntimeError: "triton" forced without CUDA (or a CPU under
            ``TRITON_INTERPRET=1``) or without an importable Triton.
    """
    name = os.environ.get("MDLM_AHEAD_ADVANCE", "auto")
    if name not in ADVANCE_BACKENDS:
        raise ValueError(f"MDLM_AHEAD_ADVANCE={name!r}: expected one of {', '.join(ADVANCE_BACKENDS)}")
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"  # host copies: no CUDA-graph capture, so not by default
    if name == "torch" or (name == "auto" and (device.type != "cuda" or interpreted or KERNEL["failed"] is not None)):
        return "torch"
    has_triton = _triton_imports()
    ok_device = device.type == "cuda" or interpreted
    if name == "triton" and not (ok_device and has_triton):
        raise RuntimeError(f"MDLM_AHEAD_ADVANCE=triton needs a CUDA device (or a CPU with TRITON_INTERPRET=1) and an "
                           f"importable triton (device {device}, triton "
                           f"{'imports' if has_triton else 'does not import'})")
    return "triton" if has_triton else "torch"


@functools.cache
def _triton_imports() -> bool:
    """Whether :mod:`.ahead_triton` imports (asked once per process)."""
    try:
        return importlib.import_module(".ahead_triton", __package__) is not None
    except Exception:  # not installed, or an install that fails to import
        return False


def advance_with_fallback(kernel: Callable[..., None], *args, fallback: bool = True) -> str:
    """``kernel(*args)`` (the Triton advance), or :func:`advance_buffers` once its first launch in this process has
    failed (one warning: a compiler, driver or launcher problem of this machine). Input errors (``ValueError``: the
    launcher's checks), a kernel that worked before and fails now, and any failure with ``fallback=False`` (a forced
    ``MDLM_AHEAD_ADVANCE=triton``) raise. Returns which ran: "triton" or "torch"."""
    if KERNEL["failed"] is None or not fallback:
        try:
            kernel(*args)
            KERNEL["ok"] = True
            return "triton"
        except Exception as e:
            if KERNEL["ok"] or isinstance(e, ValueError) or not fallback:
                raise
            KERNEL["failed"] = e
            warnings.warn(f"the Triton block-advance kernel failed at its first launch ({type(e).__name__}: {e}); "
                          "using PyTorch ops from now on (MDLM_AHEAD_ADVANCE=torch skips the kernel)", RuntimeWarning,
                          stacklevel=2)
    advance_buffers(*args)
    return "torch"


def advance_tables(blocks: list[Block], B: int, L: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The tables :func:`advance_buffers` reads, for ``blocks`` of one width W in a (B, L) canvas: each block's
    columns (NB, W) long, their flat indices b·L + column (NB, B·W) long, block masks (NB, B, W) bool and schedule
    counts (NB, S+1, B) long (0 after a block's own S steps), all on ``device``."""
    cols = torch.stack([torch.arange(b.lo, b.hi, device=device) for b in blocks])  # (NB, W)
    flat = (torch.arange(B, device=device)[None, :, None] * L + cols[:, None, :]).flatten(1)  # (NB, B·W)
    blk = torch.stack([b.blk for b in blocks]).to(device)  # (NB, B, W)
    counts = torch.zeros(len(blocks), max(b.S for b in blocks) + 1, B, dtype=torch.long)  # (NB, S+1, B)
    for k, b in enumerate(blocks):
        counts[k, : b.S + 1] = b.counts_cpu.T
    return cols, flat, blk, counts.to(device)


class LaunchAhead:
    """Runs a whole generation of :class:`.greedy.GreedyStep` steps with the block advance on the device.

    ``blocks``: every block of the generation, made before the first step (without an EOS policy a block's canvas
    changes only at its own steps, so the blocks made up front are those the loop would make when it reaches them).
    """

    def __init__(self, stepper: GreedyStep, blocks: list[Block]):
        self.stepper, self.blocks = stepper, blocks
        run = stepper.run
        dev, (B, L) = run.x.device, run.x.shape
        self.nb = len(blocks)
        self.tables = advance_tables(blocks, B, L, dev)  # cols, flat, blk, counts
        self.state = torch.zeros(2, dtype=torch.long, device=dev)  # [block, step in block]
        self.reads = 0  # host synchronisations (state read-backs)
        self.backend = advance_backend(dev)  # "torch" after a failed first launch of the kernel (advance)
        self.forced = os.environ.get("MDLM_AHEAD_ADVANCE") == "triton"  # then a failing kernel raises
        if self.backend == "triton":
            from .ahead_triton import advance_triton

            self.kernel = advance_triton

    def _start(self) -> None:
        stepper, runner, first = self.stepper, self.stepper.run.runner, self.blocks[0]
        runner.start_block()
        runner.use_fixed_window(stepper.run.x.device)
        runner.set_window(first.lo, first.hi)
        stepper.start_block(first)  # window, block mask and n_after buffers of block 0

    def advance(self, flags: Tensor) -> None:
        """After a step: the next block when this one is filled (flags[1] == 0), the next step otherwise; the
        window, block mask and count buffers refilled from the tables (the Triton kernel on CUDA, else
        :func:`advance_buffers`; :func:`advance_backend`)."""
        stepper, fixed = self.stepper, self.stepper.run.runner.fixed
        args = (self.state, flags[1], *self.tables, (stepper.window, fixed.cols), fixed.flat(*stepper.run.x.shape),
                stepper.blk, stepper.n_after)
        if self.backend == "torch":
            advance_buffers(*args)
        else:
            self.backend = advance_with_fallback(self.kernel, *args, fallback=not self.forced)

    def body(self) -> tuple[Tensor, Tensor]:
        """One step: forward, greedy step, canvas update, block advance (what a CUDA graph captures)."""
        self.stepper.run.runner.invalidate()  # the canvas changed at the last step (or the window moved)
        committed, flags = self.stepper.body()
        self.advance(flags)
        return committed, flags

    def step(self) -> None:
        """One step, replayed from a CUDA graph once one is captured (after the step's eager warm-up runs)."""
        graphs, runner, kind = self.stepper.graphs, self.stepper.run.runner, ("ahead",)
        if graphs is None or not graphs.enabled:
            self.body()
            return
        graph = graphs.captured.get(kind)
        if graph is None and graphs.warm.get(kind, 0) >= graphs.warm_runs:
            graph = capture_counted(self.body, runner.counters, runner.set_counters)  # records, does not run
            graphs.enabled = graph is not None
            if graph is not None:
                graphs.captured[kind] = graph
        if graph is None:
            self.body()
            graphs.warm[kind] = graphs.warm.get(kind, 0) + 1
            return
        graph.replay()
        graphs.replays += 1

    def run(self) -> int:
        """Decode every block; returns the steps run (each one a step of an unfinished block)."""
        self._start()
        block = steps = 0
        while block < self.nb:
            for _ in range(self.nb - block):  # each unfinished block needs a step at least: none is wasted
                self.step()
            steps += self.nb - block
            block = int(self.state[0])  # the one host synchronisation of a run of steps
            self.reads += 1
        return steps
