"""``torch.compile`` of the network's forward while the sampler decodes (``MDLMGenerationConfig.torch_compile``).

Why: at batch 1 a 125M model's decoding step is launch-bound. Its profile (one H200, 529 columns, block 32,
docs/benchmarks/h200_decode_distill/profile_b1.txt) spends about half of a graphed dual-cache step's 1.04 ms of GPU
time in ~100 small element-wise kernels (RoPE's ``roll``, ``mul``, ``add``, ``where``, copies, RMSNorm) between the
matrix products. TorchInductor fuses those into a few Triton kernels; the CUDA graphs of :mod:`.greedy` then capture
the fused kernels instead of the eager ones.

How: ``nn.Module.compile()`` keeps a compiled ``__call__`` in the module's ``_compiled_call_impl`` slot, which
``module(...)`` uses when set. :func:`compiled_calls` fills that slot for the duration of one ``generate`` and puts
back what was there, so the caller's model is unchanged afterwards; the compiled callable is kept on the model, so
later generations reuse TorchDynamo's cache (shapes are compiled as dynamic: a new canvas length does not recompile;
a new batch size did once on a CPU). The greedy step (:mod:`.greedy`) compiles the sampler's own step function too (:func:`compiled_function`).
Every runner mode calls the model through ``model(...)``; the runner reads the block window from fixed tensors where
it can (no cache, the dual cache), and the exact block cache passes tensors too, so blocks do not recompile; the
prefix cache and partial caching pass Python slices (one recompilation per block) and are refused by the config.

The first generation pays the compilation (tens of seconds for a 125M model on a GPU). With ``cuda_graphs`` each
kind of step runs eagerly twice before its capture, so nothing compiles inside a capture (:mod:`.greedy`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

_SLOT = "_compiled_call_impl"  # nn.Module's slot for a compiled __call__ (what nn.Module.compile() fills)
_KEPT = "_mdlm_compiled_call"  # our compiled callable, kept on the model between generations

# torch.compile's arguments (the tests swap the backend for a fast one; everything else keeps the defaults)
COMPILE_KWARGS: dict[str, Any] = {"backend": "inductor", "dynamic": True}
# compiled graphs kept per forward: one per kind of call (full forward, cache fill, cache step, …) and dtype; the
# default (8) would let a benchmark's many row kinds fall back to eager without a word
RECOMPILE_LIMIT = 64


_FUNCTIONS: dict[tuple, Callable] = {}


def compiled_function(fn: Callable) -> Callable:
    """``fn`` through ``torch.compile`` (:data:`COMPILE_KWARGS`), made once per function and reused: for the
    sampler's own fixed-shape step (:func:`.fused_step.greedy_confidence_step`), whose ~45 small kernels
    TorchInductor fuses into about ten (its pass over the vocabulary stays the Triton kernel of :mod:`.row_stats`)."""
    key = (fn, tuple(sorted(COMPILE_KWARGS.items())))
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = torch.compile(fn, **COMPILE_KWARGS)
    return _FUNCTIONS[key]


def check_compilable(model: Any) -> None:
    """TypeError unless ``model`` is a ``torch.nn.Module`` whose ``__call__`` honours a compiled call."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"torch_compile needs the model itself (a torch.nn.Module), not a {type(model).__name__}; "
                        "pass the model to generate() or set torch_compile=False")
    if not hasattr(model, _SLOT):
        raise TypeError(f"torch_compile needs torch >= 2.2 (nn.Module.compile); this is torch {torch.__version__}")


def recompile_headroom():
    """TorchDynamo's recompile limit raised to :data:`RECOMPILE_LIMIT` (a context manager): past the limit a function
    runs eagerly without a word, e.g. the compiled greedy step called with many rules, batch sizes and thresholds."""
    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"  # torch < 2.6: the old name
    return cfg.patch(**{name: max(RECOMPILE_LIMIT, getattr(cfg, name))})


@contextmanager
def compiled_calls(model: Any, enabled: bool) -> Iterator[None]:
    """While the ``with`` block runs, ``model(...)`` calls a ``torch.compile``'d forward (see the module docstring).

    Args:
        model: the network ``generate`` was given; with ``enabled`` it must be a ``torch.nn.Module``.
        enabled: False: nothing happens (any callable allowed).
    Raises:
        TypeError: ``enabled`` and ``model`` is not an ``nn.Module`` (e.g. a plain logits function).
    """
    if not enabled:
        yield
        return
    check_compilable(model)
    fn = model.__dict__.get(_KEPT)
    if fn is None:
        fn = torch.compile(model._call_impl, **COMPILE_KWARGS)
        model.__dict__[_KEPT] = fn
    before = getattr(model, _SLOT)
    setattr(model, _SLOT, fn)
    try:
        with recompile_headroom():
            yield
    finally:
        setattr(model, _SLOT, before)
