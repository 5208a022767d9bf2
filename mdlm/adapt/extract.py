"""A full fine-tune carried as a LoRA adapter: each weight change replaced by its truncated SVD.

A fully fine-tuned 135M model is ~540 MB of float32 weights, far more than a GPU machine can hand back; its change
ΔW = W_tuned − W_base per projection is not. :func:`extract_lora` writes ΔW ≈ B·A with the best rank-r approximation
(Eckart–Young–Mirsky: the r largest singular triplets minimise ‖ΔW − B·A‖ in Frobenius and spectral norm), as a
peft LoRA adapter (``lora_alpha = r``, so the update is exactly B·A) on the un-trained base, plus the trained rows
of the embedding (peft ``trainable_token_indices``, e.g. [MASK]). The adapter then travels and rebuilds like any
adapter of ``recipes/adapt_ar.py`` (``mdlm.adapt.persist``, ``recipes/rebuild_adapted.py``). This is the "LoRA
extraction" of model-merging toolkits; the rank trades file size against fidelity, and :func:`extract_lora` reports
the share of each ΔW's energy (squared Frobenius norm) the rank keeps.

Only what a LoRA adapter can carry may differ between base and tuned model: the target projections and the chosen
embedding rows (``recipes/adapt_ar.py --lora false --full_scope projections`` trains exactly those). Any other
change (a norm, another embedding row) raises ``ValueError`` naming the tensor instead of being silently dropped.
"""

from __future__ import annotations

from typing import Any

import torch

from ..lora import DEFAULT_TARGET_MODULES, LoraArguments, apply_lora, resolve_token_ids


def low_rank_factors(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(B (out, r), A (r, in), kept energy share) with B @ A the best rank-``r`` approximation of ``delta`` (out, in),
    by truncated SVD (Eckart–Young–Mirsky). The singular values are split evenly (√S into each factor) so neither
    factor holds the whole dynamic range (they are stored in bfloat16). ``r`` is capped at min(out, in)."""
    if rank < 1:
        raise ValueError(f"rank must be ≥ 1, got {rank}")
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)  # (out, k), (k,), (k, in)
    r = min(rank, s.numel())
    root = s[:r].sqrt()  # (r,)
    total = float((s * s).sum())
    kept = float((s[:r] * s[:r]).sum()) / total if total > 0 else 1.0
    return (u[:, :r] * root).to(delta.dtype), (root[:, None] * vh[:r]).to(delta.dtype), kept


def _lora_layers(peft_model) -> dict[str, Any]:
    """{name of the wrapped base Linear's weight (as in the plain model): LoRA layer} of the adapter 'default'."""
    from peft.tuners.lora import LoraLayer

    out = {}
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            plain = name.removeprefix("base_model.model.")
            out[f"{plain}.weight"] = module
    return out


def extract_lora(base: torch.nn.Module, tuned: torch.nn.Module, rank: int, tokenizer: Any | None = None, *,
                 target_modules: tuple[str, ...] | list[str] = DEFAULT_TARGET_MODULES,
                 embedding_tokens: tuple[str, ...] | list[str] = ("mask_token",)) -> tuple[Any, dict[str, float]]:
    """(peft model = ``base`` with a rank-``rank`` LoRA of ``tuned − base`` and the tuned ``embedding_tokens`` rows,
    {projection weight: kept energy share}). ``base`` is wrapped in place (take a fresh copy); ``tuned`` is only read.

    Raises ``ValueError`` when the two models differ in shape, or in any tensor a LoRA of ``target_modules`` plus
    those embedding rows cannot carry."""
    base_sd = dict(base.state_dict())
    tuned_sd = tuned.state_dict()
    if base_sd.keys() != tuned_sd.keys():
        raise ValueError(f"base and tuned models have different tensors: {sorted(base_sd.keys() ^ tuned_sd.keys())[:6]}")
    emb_w = base.get_input_embeddings().weight
    emb_key = next(k for k, v in base_sd.items() if v.data_ptr() == emb_w.data_ptr())
    vocab = emb_w.shape[0]
    rows = resolve_token_ids(list(embedding_tokens), tokenizer, vocab)
    targets = tuple(target_modules)
    for k, b in base_sd.items():
        t = tuned_sd[k]
        if b.shape != t.shape:
            raise ValueError(f"{k}: base {tuple(b.shape)} vs tuned {tuple(t.shape)}")
        module = k.removesuffix(".weight")
        if k.endswith(".weight") and module.rsplit(".", 1)[-1] in targets:
            continue  # the LoRA carries it
        diff = t.to(b.dtype) != b
        if k == emb_key or b.data_ptr() == emb_w.data_ptr():  # the embedding, or an LM head tied to it
            diff = diff.any(dim=1)  # (V,)
            diff[rows] = False
        if diff.any():
            raise ValueError(f"{k} differs between base and tuned model but a LoRA of {list(targets)} plus embedding "
                             f"rows {rows} cannot carry it (train with --full_scope projections)")
    args = LoraArguments(r=rank, alpha=float(rank), dropout=0.0, target_modules=list(targets),
                         train_embedding_tokens=[str(r) for r in rows] if rows else None)
    peft_model = apply_lora(base, args, tokenizer)
    kept: dict[str, float] = {}
    with torch.no_grad():
        for key, layer in _lora_layers(peft_model).items():
            w0 = base_sd[key]
            delta = tuned_sd[key].to(torch.float64) - w0.to(torch.float64)  # (out, in)
            if getattr(layer, "fan_in_fan_out", False):  # GPT-2's Conv1D stores (in, out)
                delta = delta.T
            b, a, kept[key] = low_rank_factors(delta, rank)
            if b.shape[1] < rank:  # a projection narrower than the rank: pad with zero directions
                b = torch.cat([b, b.new_zeros(b.shape[0], rank - b.shape[1])], dim=1)
                a = torch.cat([a, a.new_zeros(rank - a.shape[0], a.shape[1])], dim=0)
            layer.lora_B["default"].weight.copy_(b)
            layer.lora_A["default"].weight.copy_(a)
        if rows:
            from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

            tuned_rows = tuned.get_input_embeddings().weight[rows]  # (n, D)
            layers = [m for m in peft_model.modules() if isinstance(m, TrainableTokensLayer) and m.tied_adapter is None]
            if not layers:
                raise ValueError("the peft model holds no trainable embedding rows "
                                 "(a peft without trainable_token_indices?)")
            for m in layers:
                m.trainable_tokens_delta["default"].copy_(tuned_rows)
    return peft_model, kept
