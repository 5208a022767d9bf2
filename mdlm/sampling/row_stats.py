"""Per-position statistics of the greedy step, from the logits in one pass over the vocabulary.

For each position (row) r of logits ℓ_r ∈ R^V, with the suppressed ids S (the mask id, …) at −inf:

  x̂_r    = argmax_v ℓ_r(v)                       (ties → lower id)
  rest_r  = Σ_{v ≠ x̂, v ∉ S} exp(ℓ_r(v) − ℓ_r(x̂))   (the other tokens' mass relative to the chosen one)
  log p(x̂) = −log1p(rest_r)        1 − p(x̂) = rest_r / (1 + rest_r)   (exact near p = 1, where p itself rounds to 1)
  H_r     = log Z' − T'/Z'  with Z' = 1 + rest_r, T' = Σ_v exp(ℓ_v − ℓ_x̂)(ℓ_v − ℓ_x̂)   (the entropy of softmax(ℓ_r))

These are what the greedy confidence step (:mod:`.fused_step`) needs: the token, its log-confidence (MaskGIT /
LLaDA ranking), 1 − p (Fast-dLLM's threshold and factor rules) and the entropy (the EB-sampler's budget).

Two implementations with the same outputs up to float32 rounding:

* :func:`row_stats_torch` — PyTorch ops (any device), the greedy step's computation before the kernel: ``log_softmax``
  in float32, log p(x̂) gathered from it, 1 − p(x̂) and H only when asked for.
* a Triton kernel (:mod:`.row_stats_triton`, CUDA only) — reads the logits once, in chunks of the vocabulary spread
  over many thread blocks (a row of 50k logits on one thread block is latency-bound at small batch), then combines
  the chunks' (max, argmax, rest, T) per row (the online-softmax rescaling of Milakov & Gimelshein 2018, "Online
  normalizer calculation for softmax"). On a GPU the step reads the (B, W, V) logits once instead of ~8 times.

One difference in what they rank: where p(x̂) is within ~6e-8 of 1, float32 ``log_softmax`` gives log p(x̂) = 0 exactly,
so such positions tie (→ the lower index commits first); the kernel's −log1p(rest) keeps them apart, as the general
sampler's float64 confidence does. A step that commits some but not all of several near-certain positions can
therefore commit different ones (the tokens chosen per position are the same).

:func:`greedy_row_stats` picks the kernel for CUDA logits when Triton imports (and its first launch works: otherwise
one warning and PyTorch from then on), PyTorch otherwise; :func:`use_backend` or the environment variable
``MDLM_ROW_STATS`` (auto, torch, triton) forces one.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

Tensor = torch.Tensor

BACKENDS = ("auto", "torch", "triton")
_BACKEND: dict = {}  # "name": the current choice (default: $MDLM_ROW_STATS or "auto")
_TRITON: dict = {}


def _triton_module():
    """:mod:`.row_stats_triton`, or None when Triton does not import (a CPU-only install) or its first launch failed."""
    if "mod" not in _TRITON:
        try:
            from . import row_stats_triton
            _TRITON["mod"] = row_stats_triton
        except ImportError:
            _TRITON["mod"] = None
    mod = _TRITON["mod"]
    return None if mod is None or mod.LAUNCH["failed"] is not None else mod


def _check(name: str, where: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{where} must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def current_backend() -> str:
    """The choice in force: :func:`use_backend`'s, else ``$MDLM_ROW_STATS``, else "auto"."""
    if "name" not in _BACKEND:
        _BACKEND["name"] = _check(os.environ.get("MDLM_ROW_STATS", "auto"), "MDLM_ROW_STATS")
    return _BACKEND["name"]


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the block, :func:`greedy_row_stats` uses ``name``: "auto", "torch" or "triton".

    Raises:
        ValueError: an unknown name. RuntimeError (at the first call): "triton" without Triton or for CPU logits.
    """
    _check(name, "row-stats backend")
    before = current_backend()
    _BACKEND["name"] = name
    try:
        yield
    finally:
        _BACKEND["name"] = before


def _kernel_device_ok(logits: Tensor) -> bool:
    """CUDA logits, or any under Triton's CPU interpreter (``TRITON_INTERPRET=1``, for the tests)."""
    return logits.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"


def backend_for(logits: Tensor, name: str | None = None) -> str:
    """The implementation :func:`greedy_row_stats` runs for these logits under the choice ``name`` (None: the one in
    force): "triton" or "torch". Raises RuntimeError for "triton" without Triton or for CPU logits."""
    name = current_backend() if name is None else _check(name, "row_stats")
    if name == "torch":
        return "torch"
    if name == "auto":  # CPU logits never import Triton
        return "triton" if logits.is_cuda and _triton_module() is not None else "torch"
    usable = _triton_module() is not None
    if not usable or not _kernel_device_ok(logits):
        raise RuntimeError("the Triton row-stats kernel needs CUDA logits and an importable, working triton "
                           f"(logits on {logits.device}, triton {'usable' if usable else 'not usable'})")
    return "triton"


def row_stats_torch(logits: Tensor, suppress: Tensor, want_err: bool = True, want_entropy: bool = False
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The statistics with PyTorch ops. logits (..., V) any float dtype; suppress (K,) long ids.

    Returns (tok (...) long, log_conf (...) float32, err (...) float32 = 1 − p(x̂) summed over the other tokens,
    ent (...) float32); ``err`` / ``ent`` are zeros unless ``want_err`` / ``want_entropy`` (each costs passes over
    the float32 log-probabilities)."""
    lg = logits.index_fill(-1, suppress, float("-inf"))  # (..., V), logits' dtype
    tok = lg.argmax(dim=-1)  # (...)
    logp = torch.log_softmax(lg, dim=-1, dtype=torch.float32)  # (..., V) one fused pass, float32 accumulation
    log_conf = logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1)  # (...)
    zeros = torch.zeros_like(log_conf)
    err = logp.scatter(-1, tok.unsqueeze(-1), float("-inf")).exp().sum(dim=-1) if want_err else zeros  # (...)
    ent = -(logp.exp() * logp.clamp_min(torch.finfo(logp.dtype).min)).sum(dim=-1) if want_entropy else zeros
    return tok, log_conf, err, ent


def greedy_row_stats(logits: Tensor, suppress: Tensor, want_err: bool = True, want_entropy: bool = False,
                     backend: str | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(tok, log p(x̂), 1 − p(x̂), entropy) per position of ``logits`` (..., V), ``suppress`` (K,) long ids never chosen.

    Outputs have the leading shape (...): tok long, the others float32 (from the PyTorch implementation 1 − p and the
    entropy are zeros unless asked for; the kernel always computes both). ``backend``: "auto", "torch" or "triton";
    None: the choice in force (a compiled caller should pass :func:`backend_for`'s answer, resolved outside, so that the
    choice is part of its arguments). See the module docstring.

    Raises:
        ValueError: an unknown backend. RuntimeError: "triton" without a usable Triton or for CPU logits."""
    if backend_for(logits, backend) == "triton":
        return torch.ops.mdlm.greedy_row_stats(logits, suppress)
    return row_stats_torch(logits, suppress, want_err, want_entropy)
