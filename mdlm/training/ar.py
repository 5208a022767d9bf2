"""Autoregressive baseline: the SAME transformer with causal attention and next-token loss.

MDLM (Sahoo et al. 2024, Table 1) and LLaDA compare a masked-diffusion model with an autoregressive
model of the same size trained on the same tokens: the MDM's ELBO perplexity is an upper bound, the
AR perplexity is exact, and their ratio is the price of any-order generation. Here the AR model is
``MDLMForMaskedLM`` with ``config.is_causal = True`` (``recipes/train_text.py --objective ar``).

Teacher forcing with a start token: the input is ``[start] x_0 … x_{L-2}`` and the targets are
``x_0 … x_{L-1}``, so all L tokens of a row are scored (the first one given only the start token,
the packed corpus's EOS document separator) — exactly the tokens the MDM ELBO scores, at the same
sequence length. Loss: mean NLL over eligible (non-padding, non-prompt) target tokens.

Padding is on the right (``MDMCollator``) and the model runs WITHOUT an attention mask: under causal
attention a real position never sees the padding after it, and padded positions are not scored.
(transformers' SDPA path drops ``is_causal`` when a padding mask is passed, so we never pass one.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..fused_ce import token_cross_entropy_fused
from .trainer import MDMTrainer, _unwrap

Tensor = torch.Tensor
OBJECTIVES = ("mdm", "ar", "bd3")


@dataclass
class ObjectiveArguments:
    """Which objective trains the transformer."""

    objective: str = field(
        default="mdm", metadata={"help": "mdm (masked diffusion, default), ar (causal next-token baseline) or bd3 "
                                         "(block diffusion, BD3-LM: needs --block_size; docs/block_diffusion.md)"}
    )
    block_size: int | None = field(
        default=None, metadata={"help": "bd3 only: tokens per diffusion block; must divide --seq_len (BD3-LM uses 4-16)"}
    )

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.objective == "bd3":
            if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) or self.block_size < 1:
                raise ValueError(f"--objective bd3 needs --block_size, a positive integer; got {self.block_size!r}")
        elif self.block_size is not None:
            raise ValueError(f"--block_size is for --objective bd3 (block diffusion), not --objective {self.objective}")


def shift_right(input_ids: Tensor, start_id: int) -> Tensor:
    """Teacher-forcing input: (B, L) → (B, L) ``[start, x_0, …, x_{L-2}]``."""
    start = torch.full_like(input_ids[:, :1], start_id)  # (B, 1)
    return torch.cat([start, input_ids[:, :-1]], dim=1)


def check_right_padded(attention_mask: Tensor) -> None:
    """Raise unless every row is ``1…1 0…0`` (what running without a mask relies on). (B, L)."""
    am = attention_mask.bool()
    if bool((am[:, 1:] & ~am[:, :-1]).any()):
        raise ValueError("the AR objective needs right-padded rows (padding only after the last real token)")


def ar_logits(model: torch.nn.Module, inp: Tensor, positions: Tensor | None = None) -> Tensor:
    """Logits of a causal model: (B, L, V), or (M, V) at ``positions`` (B, L) bool when the model can
    restrict its LM head (``MDLMForMaskedLM``)."""
    from ..modeling import MDLMForMaskedLM

    if positions is not None and isinstance(_unwrap(model), MDLMForMaskedLM):
        return model(input_ids=inp, logits_positions=positions).logits  # (M, V)
    logits = model(input_ids=inp).logits  # (B, L, V)
    return logits[positions] if positions is not None else logits


def ar_nll(model: torch.nn.Module, input_ids: Tensor, scored: Tensor, start_id: int) -> tuple[Tensor, Tensor]:
    """Exact NLL of the scored tokens under a causal model. input_ids (B, L); scored (B, L) bool
    (right-padded rows). Returns (nll_sum (B,) float32 nats, num_tokens (B,) long)."""
    logits = ar_logits(model, shift_right(input_ids, start_id), scored)  # (M, V)
    nll = token_cross_entropy_fused(logits, input_ids[scored], None)  # (M,) float32; one pass over the logits
    B = input_ids.shape[0]
    row = torch.arange(B, device=input_ids.device)[:, None].expand_as(input_ids)[scored]  # (M,)
    nll_sum = torch.zeros(B, dtype=torch.float32, device=input_ids.device).index_add_(0, row, nll)
    return nll_sum, scored.sum(dim=1)


def check_causal(model: torch.nn.Module) -> None:
    cfg = getattr(_unwrap(model), "config", None)
    if not getattr(cfg, "is_causal", False):
        raise ValueError(
            "the AR objective needs a causal model (config.is_causal = true); recipes/train_text.py --objective ar "
            "builds one"
        )


class ARTrainer(MDMTrainer):
    """``MDMTrainer`` (crash-safe checkpoints, non-finite-loss stop) with the next-token loss and an
    exact-perplexity evaluation. ``start_id``: the token before x_0 (the tokenizer's EOS)."""

    def __init__(self, *args, start_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.start_id = int(start_id)
        check_causal(self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        nll_sum, n = self._batch_nll(model, inputs, None)  # (B,) each
        loss = nll_sum.sum() / n.sum().clamp_min(1)
        self._check_finite(loss)
        return (loss, {"loss": loss}) if return_outputs else loss

    def _batch_nll(self, model, batch: dict, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact next-token NLL (sum, tokens per row) over the same tokens the MDM trainer's ELBO scores (no randomness)."""
        check_right_padded(batch["attention_mask"])
        scored = batch["eligible"].bool() & batch["attention_mask"].bool()
        return ar_nll(model, batch["input_ids"], scored, self.start_id)
