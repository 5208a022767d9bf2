"""Turn a model into the sampler's ``logits_fn(x, attention_mask) -> (B, L, V)``.

``as_logits_fn`` accepts
  (a) an HF-style ``nn.Module`` whose ``forward`` takes ``input_ids``: it is called as
      ``obj(input_ids=x, attention_mask=am, position_ids=pos).logits`` with
      ``pos = (cumsum(am) − 1).clamp_min(0)``, so a LEFT-padded row sees the same positions
      0, 1, 2, … as the unpadded row (``position_ids`` / ``attention_mask`` are only passed when
      ``forward`` accepts them or takes ``**kwargs``);
  (b) any callable ``f(x)`` or ``f(x, attention_mask)``; its output may be a tensor, an object
      with ``.logits`` or a tuple whose first item is the logits.
Wrapping is idempotent: a function returned by ``as_logits_fn`` passes through unchanged.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from mdlm.modeling.padding import default_position_ids

Tensor = torch.Tensor
LogitsFn = Callable[[Tensor, "Tensor | None"], Tensor]


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions that skip left padding: ``(cumsum(am) − 1).clamp_min(0)``. (B, L) long."""
    return default_position_ids(attention_mask, attention_mask)


def extract_logits(out: Any) -> Tensor:
    """The logits tensor of a model output (tensor, ``.logits`` attribute, dict or tuple)."""
    if isinstance(out, Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, dict) and "logits" in out:
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    raise TypeError(f"cannot find logits in a model output of type {type(out).__name__}")


def _signature(fn: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _accepts(sig: inspect.Signature | None, name: str) -> bool:
    if sig is None:
        return True
    params = sig.parameters.values()
    return name in sig.parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _n_positional(sig: inspect.Signature | None) -> int:
    if sig is None:
        return 1
    n = 0
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return 2
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def _is_hf_style(obj: Any) -> bool:
    if not isinstance(obj, torch.nn.Module):
        return False
    sig = _signature(obj.forward)
    return sig is not None and "input_ids" in sig.parameters


def as_logits_fn(obj: Any) -> LogitsFn:
    """Wrap ``obj`` as ``fn(x (B, L) long, attention_mask (B, L) | None) -> logits (B, L, V)``."""
    if getattr(obj, "_mdlm_logits_fn", False):
        return obj
    if _is_hf_style(obj):
        sig = _signature(obj.forward)
        pass_am = _accepts(sig, "attention_mask")
        pass_pos = _accepts(sig, "position_ids")

        def hf_fn(x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
            kwargs: dict[str, Tensor] = {}
            if attention_mask is not None:
                if pass_am:
                    kwargs["attention_mask"] = attention_mask
                if pass_pos:
                    kwargs["position_ids"] = position_ids_from_mask(attention_mask)
            return extract_logits(obj(input_ids=x, **kwargs))

        fn: Callable = hf_fn
    elif callable(obj):
        target = obj.forward if isinstance(obj, torch.nn.Module) else obj
        takes_mask = _n_positional(_signature(target)) >= 2

        def plain_fn(x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
            out = obj(x, attention_mask) if takes_mask else obj(x)
            return extract_logits(out)

        fn = plain_fn
    else:
        raise TypeError(f"model_fn must be callable, got {type(obj).__name__}")
    fn._mdlm_logits_fn = True  # type: ignore[attr-defined]
    return fn
