"""The launch-ahead block advance (:func:`.ahead.advance_buffers`) as one Triton kernel (CUDA; imports only with Triton).

:func:`.ahead.advance_buffers` is 21 small PyTorch kernels per decoding step (a comparison, casts, ``where``,
``stack``, clamps, index selects and copies), each a launch inside the step's CUDA graph for a few dozen numbers.
Here one program does the same work: it reads the step's ``left`` count and the state (block, step in block),
writes the new state, and copies row (k, j) of the tables — the block k the next step reads, the schedule count j
after it — into the step's input buffers, in chunks of ``BLOCK`` numbers. One program only: the state is read and
written by the same program, so no other one can see it half-updated.

The same results as :func:`.ahead.advance_buffers` (tests/test_launch_ahead.py, under ``TRITON_INTERPRET=1`` on a
CPU and on a GPU); the block mask is copied as bytes (a bool tensor's storage).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

Tensor = torch.Tensor

BLOCK = 256  # numbers copied per chunk of the program's loop (a power of two)


# sizes are not specialised on (Triton compiles a variant per "== 1" / "divisible by 16" pattern of its integer
# arguments otherwise: a warm-up over 2 blocks and a generation of 32 would compile twice)
@triton.jit(do_not_specialize=["NB", "S1", "W", "BW", "B"])
def _advance_kernel(state_ptr, left_ptr, cols_t_ptr, flat_t_ptr, blk_t_ptr, counts_t_ptr, win_ptr, cols_ptr,
                    flat_ptr, blk_ptr, n_ptr, NB, S1, W, BW, B, BLOCK: tl.constexpr):
    left = tl.load(left_ptr)
    block = tl.load(state_ptr)
    i = tl.load(state_ptr + 1)
    filled = left == 0  # the block has no masked position left: the next step starts the next block
    block = tl.where(filled, block + 1, block)
    i = tl.where(filled, 0, i + 1)
    tl.store(state_ptr, block)
    tl.store(state_ptr + 1, i)
    k = tl.minimum(block, NB - 1).to(tl.int64)  # the block the next step reads (the last one once finished)
    j = tl.minimum(i + 1, S1 - 1).to(tl.int64)  # the schedule's count after the next step
    offs = tl.arange(0, BLOCK)
    for start in range(0, W, BLOCK):
        o = start + offs
        m = o < W
        c = tl.load(cols_t_ptr + k * W + o, mask=m)
        tl.store(win_ptr + o, c, mask=m)
        tl.store(cols_ptr + o, c, mask=m)
    for start in range(0, BW, BLOCK):
        o = start + offs
        m = o < BW
        tl.store(flat_ptr + o, tl.load(flat_t_ptr + k * BW + o, mask=m), mask=m)
        tl.store(blk_ptr + o, tl.load(blk_t_ptr + k * BW + o, mask=m), mask=m)
    for start in range(0, B, BLOCK):
        o = start + offs
        m = o < B
        tl.store(n_ptr + o, tl.load(counts_t_ptr + (k * S1 + j) * B + o, mask=m), mask=m)


def advance_triton(state: Tensor, left: Tensor, cols_t: Tensor, flat_t: Tensor, blk_t: Tensor, counts_t: Tensor,
                   cols_bufs: tuple[Tensor, ...], flat_buf: Tensor, blk_buf: Tensor, n_after_buf: Tensor) -> None:
    """:func:`.ahead.advance_buffers` (same arguments and results) as one kernel launch. ``cols_bufs``: exactly two
    (W,) buffers (the step's window and the fixed window's columns); every tensor contiguous, on one CUDA device (or
    any device under ``TRITON_INTERPRET=1``).

    Raises:
        ValueError: not two column buffers, a table or buffer that is not contiguous, or shapes that do not agree
            (the kernel would read or write out of bounds where the PyTorch ops raise).
    """
    if len(cols_bufs) != 2:
        raise ValueError(f"advance_triton writes two column buffers, got {len(cols_bufs)}")
    tensors = (state, cols_t, flat_t, blk_t, counts_t, *cols_bufs, flat_buf, blk_buf, n_after_buf)
    if not all(t.is_contiguous() for t in tensors):
        raise ValueError("advance_triton needs contiguous tables and buffers")
    nb, w = cols_t.shape
    s1, b = counts_t.shape[1], counts_t.shape[2]
    bw = flat_t.shape[1]
    agree = (state.numel() == 2 and left.numel() == 1 and flat_t.shape[0] == blk_t.shape[0] == counts_t.shape[0] == nb
             and blk_t[0].numel() == bw == flat_buf.numel() == blk_buf.numel() and n_after_buf.numel() == b
             and all(c.numel() == w for c in cols_bufs) and blk_t.dtype == blk_buf.dtype == torch.bool)
    if not agree:
        raise ValueError(f"advance_triton: shapes do not agree (state {tuple(state.shape)}, cols {tuple(cols_t.shape)},"
                         f" flat {tuple(flat_t.shape)}, blk {tuple(blk_t.shape)} {blk_t.dtype}, counts "
                         f"{tuple(counts_t.shape)}, buffers {[tuple(c.shape) for c in cols_bufs]} "
                         f"{tuple(flat_buf.shape)} {tuple(blk_buf.shape)} {blk_buf.dtype} {tuple(n_after_buf.shape)})")
    _advance_kernel[(1,)](state, left, cols_t, flat_t, blk_t.view(torch.uint8), counts_t, cols_bufs[0], cols_bufs[1],
                          flat_buf, blk_buf.view(torch.uint8), n_after_buf, nb, s1, w, bw, b,
                          BLOCK=BLOCK, num_warps=1)
