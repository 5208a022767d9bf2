"""The AR source's exact negative log-likelihood on the tokens the adapted MDM is scored on.

Each row x (B, L) is scored as p(x_0 | sep) · Π_i p(x_i | sep, x_<i): a separator column is prepended (SmolLM2's
``<|endoftext|>``, the document separator it was pre-trained with), so all L tokens are scored, exactly the tokens
the masked-diffusion ELBO (:func:`mdlm.evaluation.elbo.elbo_nll`) bounds. The [MASK] logit is excluded as in the MDM loss.
The ratio exp(ELBO/token) / exp(AR NLL/token) is the "how close does the adapted model get to its source" figure.
"""

from __future__ import annotations

import torch

from ..loss import token_cross_entropy

Tensor = torch.Tensor


@torch.no_grad()
def ar_nll(lm: torch.nn.Module, input_ids: Tensor, separator_id: int, mask_id: int | None = None) -> tuple[Tensor, Tensor]:
    """(NLL sum in nats (B,), scored tokens (B,)) of a causal LM on rows ``input_ids`` (B, L), no padding."""
    B, L = input_ids.shape
    sep = torch.full((B, 1), int(separator_id), dtype=input_ids.dtype, device=input_ids.device)
    logits = lm(input_ids=torch.cat([sep, input_ids], dim=1), use_cache=False).logits[:, :-1]  # (B, L, V)
    ce = token_cross_entropy(logits.reshape(B * L, -1), input_ids.reshape(-1), mask_id).view(B, L)  # (B, L)
    return ce.sum(dim=1), torch.full((B,), L, device=input_ids.device)


@torch.no_grad()
def check_causal(lm: torch.nn.Module) -> None:
    """RuntimeError unless ``lm`` runs causally by default (changing the last token leaves the first logits alone):
    an exact AR likelihood is only exact for a causal run."""
    dev = next(lm.parameters()).device
    x = torch.arange(6, device=dev)[None] % lm.get_input_embeddings().num_embeddings  # (1, 6)
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % lm.get_input_embeddings().num_embeddings
    if not torch.equal(lm(input_ids=x, use_cache=False).logits[0, 0], lm(input_ids=y, use_cache=False).logits[0, 0]):
        raise RuntimeError(f"{type(lm).__name__} does not run causally (attention implementation "
                           f"{getattr(lm.config, '_attn_implementation', None)!r}); its AR likelihood would not be exact")


@torch.no_grad()
def ar_dataset_nll(lm: torch.nn.Module, rows: Tensor, separator_id: int, mask_id: int | None = None,
                   batch_size: int = 16) -> float:
    """Nats per token of ``lm`` over all rows (N, L) (on the device of ``lm``)."""
    dev = next(lm.parameters()).device
    check_causal(lm)
    tot, n = 0.0, 0
    for i in range(0, rows.shape[0], batch_size):
        s, c = ar_nll(lm, rows[i : i + batch_size].to(dev), separator_id, mask_id)
        tot += float(s.double().sum())
        n += int(c.sum())
    return tot / max(n, 1)
