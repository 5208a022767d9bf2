"""The greedy step's per-position statistics (:mod:`.row_stats`) as two Triton kernels (CUDA; imports only with Triton).

Kernel 1 (grid R × C): program (r, c) reads chunk c (``CHUNK`` ids) of row r once, in float32, suppressed ids at −inf
(a (V,) flag per id, built from the id list and shared by every row),
and writes the chunk's max m_c, its first argmax i_c, rest_c = Σ_{v ≠ i_c} exp(ℓ_v − m_c) and
T_c = Σ_v exp(ℓ_v − m_c)(ℓ_v − m_c). Kernel 2 (grid R) combines a row's C chunks (online-softmax rescaling,
Milakov & Gimelshein 2018): M = max m_c, the winning chunk w = the first with m_c = M (so ties → lower id),
s_c = exp(m_c − M), rest = rest_w + Σ_{c ≠ w} s_c (rest_c + 1) (the winner's own term is never added and subtracted,
so a rest far below float32's epsilon survives), T = Σ_c s_c (T_c + (m_c − M)(rest_c + 1)), Z = 1 + rest, and writes

  tok = i_w,  log p(x̂) = −log1p(rest),  1 − p(x̂) = rest / Z,  H = log Z − T / Z.

Splitting the vocabulary over C programs keeps a small batch (32 positions at batch 1) from leaving the GPU idle: a
50k-id row read by one thread block is bound by that block's memory latency, not by the GPU's bandwidth.
"""

from __future__ import annotations

import warnings

import torch
import triton
import triton.language as tl

Tensor = torch.Tensor

# the first launch is tried (a Triton that imports may still fail to compile or launch on this machine): on failure
# one warning, the PyTorch statistics from then on (``failed`` holds the error; :mod:`.row_stats` then picks PyTorch)
LAUNCH: dict = {"ok": False, "failed": None}

CHUNK = 4096  # vocabulary ids per program of kernel 1 (a power of two)


@triton.jit
def _chunk_kernel(x_ptr, stride_row, V, banned_ptr, m_ptr, i_ptr, rest_ptr, t_ptr, C, BLOCK: tl.constexpr):
    r = tl.program_id(0)
    c = tl.program_id(1)
    local = tl.arange(0, BLOCK)
    ids = c * BLOCK + local
    x = tl.load(x_ptr + r.to(tl.int64) * stride_row + ids, mask=ids < V, other=float("-inf")).to(tl.float32)
    banned = tl.load(banned_ptr + ids, mask=ids < V, other=1)  # (V,) flags shared by every row: read from L2
    x = tl.where(banned != 0, float("-inf"), x)
    m = tl.max(x, axis=0)
    i = tl.argmax(x, axis=0, tie_break_left=True)
    live = x > float("-inf")
    d = tl.where(live, x - tl.where(m == float("-inf"), 0.0, m), 0.0)  # (BLOCK,) ≤ 0, 0 where suppressed
    e = tl.where(live, tl.exp(d), 0.0)
    rest = tl.sum(tl.where(local == i, 0.0, e), axis=0)
    t = tl.sum(e * d, axis=0)
    out = r * C + c
    tl.store(m_ptr + out, m)
    tl.store(i_ptr + out, c * BLOCK + i)
    tl.store(rest_ptr + out, rest)
    tl.store(t_ptr + out, t)


@triton.jit
def _combine_kernel(m_ptr, i_ptr, rest_ptr, t_ptr, C, tok_ptr, lc_ptr, err_ptr, ent_ptr, CP: tl.constexpr):
    r = tl.program_id(0)
    cs = tl.arange(0, CP)
    ok = cs < C
    m = tl.load(m_ptr + r * C + cs, mask=ok, other=float("-inf"))
    idx = tl.load(i_ptr + r * C + cs, mask=ok, other=0)
    rest_c = tl.load(rest_ptr + r * C + cs, mask=ok, other=0.0)
    t_c = tl.load(t_ptr + r * C + cs, mask=ok, other=0.0)
    big = tl.max(m, axis=0)
    win = tl.argmax(m, axis=0, tie_break_left=True)
    live = m > float("-inf")
    diff = tl.where(live, m - tl.where(big == float("-inf"), 0.0, big), 0.0)
    scale = tl.where(live, tl.exp(diff), 0.0)
    is_win = cs == win
    rest = tl.sum(tl.where(is_win, rest_c, scale * (rest_c + 1.0)), axis=0)
    t = tl.sum(tl.where(live, scale * (t_c + diff * (rest_c + 1.0)), 0.0), axis=0)
    tok = tl.sum(tl.where(is_win, idx, 0), axis=0)
    z = 1.0 + rest
    log_z = tl.where(rest < 1e-3, rest * (1.0 - rest * (0.5 - rest / 3.0)), tl.log(z))  # log1p(rest)
    tl.store(tok_ptr + r, tok.to(tl.int64))
    tl.store(lc_ptr + r, -log_z)
    tl.store(err_ptr + r, rest / z)
    tl.store(ent_ptr + r, log_z - t / z)


def row_stats_triton(logits: Tensor, suppress: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`.row_stats.greedy_row_stats` by the two kernels. logits (..., V) float (CUDA, or any device under
    ``TRITON_INTERPRET=1``), suppress (K,) long. Returns (tok long, log_conf, err, ent float32), each (...)."""
    V = logits.shape[-1]
    lead = logits.shape[:-1]
    x = logits.reshape(-1, V)
    if x.stride(-1) != 1:
        x = x.contiguous()
    R, C = x.shape[0], triton.cdiv(V, CHUNK)
    tok = torch.empty(R, dtype=torch.long, device=x.device)
    lc, err, ent = (torch.empty(R, dtype=torch.float32, device=x.device) for _ in range(3))
    if R > 0:
        m, rest, t = (torch.empty((R, C), dtype=torch.float32, device=x.device) for _ in range(3))
        idx = torch.empty((R, C), dtype=torch.int32, device=x.device)
        banned = torch.zeros(V, dtype=torch.uint8, device=x.device).index_fill_(0, suppress.to(x.device), 1)  # (V,)
        _chunk_kernel[(R, C)](x, x.stride(0), V, banned, m, idx, rest, t, C, BLOCK=CHUNK, num_warps=8)
        _combine_kernel[(R,)](m, idx, rest, t, C, tok, lc, err, ent, CP=triton.next_power_of_2(C), num_warps=1)
    return tok.view(lead), lc.view(lead), err.view(lead), ent.view(lead)


@torch.library.custom_op("mdlm::greedy_row_stats", mutates_args=())
def greedy_row_stats_op(logits: Tensor, suppress: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The kernels as one operator: opaque to TorchDynamo, so a compiled greedy step calls them as they are. If the
    very first launch fails, warns once and answers with the PyTorch statistics (see :data:`LAUNCH`)."""
    if LAUNCH["ok"]:
        return row_stats_triton(logits, suppress)
    if LAUNCH["failed"] is None:
        try:
            out = row_stats_triton(logits, suppress)
            LAUNCH["ok"] = True
            return out
        except Exception as e:  # a compiler, driver or launcher problem of this machine, not of the inputs
            LAUNCH["failed"] = e
            warnings.warn(f"the Triton row-stats kernel failed at its first launch ({type(e).__name__}: {e}); "
                          "using PyTorch ops from now on (set MDLM_ROW_STATS=torch to skip the kernel)",
                          RuntimeWarning, stacklevel=2)
    from .row_stats import row_stats_torch

    return row_stats_torch(logits, suppress, True, True)


@greedy_row_stats_op.register_fake
def _(logits: Tensor, suppress: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    lead = logits.shape[:-1]
    f32 = dict(dtype=torch.float32, device=logits.device)
    return (torch.empty(lead, dtype=torch.long, device=logits.device), torch.empty(lead, **f32),
            torch.empty(lead, **f32), torch.empty(lead, **f32))
