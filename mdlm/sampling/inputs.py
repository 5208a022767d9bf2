"""Checks and normalisation of :func:`mdlm.sampling.generate`'s inputs: the canvas, its masks and the generator."""

from __future__ import annotations

from typing import Any

import torch

Tensor = torch.Tensor


def _as_bool_mask(name: str, m: Any, shape: torch.Size, device: torch.device) -> Tensor:
    if not isinstance(m, Tensor):
        m = torch.as_tensor(m)
    if m.shape != shape:
        raise ValueError(f"{name} must have the canvas shape {tuple(shape)}, got {tuple(m.shape)}")
    return m.to(device=device) != 0 if m.dtype != torch.bool else m.to(device)


def prepare_canvas(canvas: Tensor, mask_id: int | None, generate_mask: Any, cond_mask: Any,
                   attention_mask: Any) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """→ (x (B, L) long, a copy with [MASK] at every generated position; gen (B, L) bool, the positions to fill;
    cond (B, L) bool, the condition positions; the model's attention mask (B, L) long, or None)."""
    if mask_id is None:
        raise ValueError("mask_id is required (the id of the [MASK] token)")
    if not isinstance(canvas, Tensor) or canvas.dim() != 2:
        raise ValueError(f"canvas must be a (B, L) tensor of token ids, got {getattr(canvas, 'shape', type(canvas))}")
    if canvas.dtype.is_floating_point or canvas.dtype == torch.bool or canvas.dtype.is_complex:
        raise ValueError(f"canvas must hold integer token ids, got dtype {canvas.dtype}")
    x = canvas.to(torch.long).clone()
    shape, dev = x.shape, x.device
    model_am = None
    if attention_mask is None:
        am = torch.ones(shape, dtype=torch.bool, device=dev)
    else:
        am = _as_bool_mask("attention_mask", attention_mask, shape, dev)
        model_am = am.long()
    gen = (x == mask_id) if generate_mask is None else _as_bool_mask("generate_mask", generate_mask, shape, dev)
    gen = gen & am  # padding is never generated
    if cond_mask is None:
        cond = am & ~gen & (x != mask_id)
    else:
        cond = _as_bool_mask("cond_mask", cond_mask, shape, dev) & am
        if bool((cond & gen).any()):
            raise ValueError("cond_mask and generate_mask overlap; condition positions are never generated")
    x.masked_fill_(gen, mask_id)
    return x, gen, cond, model_am


def check_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """The given generator (on the canvas's device type), or a fresh randomly seeded one."""
    if generator is None:
        g = torch.Generator(device=device)
        g.seed()
        return g
    if torch.device(generator.device).type != device.type:
        raise ValueError(f"generator is on {generator.device} but the canvas is on {device}")
    return generator
