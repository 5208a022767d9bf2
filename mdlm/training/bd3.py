"""Block diffusion (BD3-LM, Arriola et al. 2025): the training loss, its validation NELBO and the Trainer.

BD3-LM factorises a sequence of B blocks autoregressively over blocks, log p(x) = Σ_b log p(x^b | x^{<b}) (BD3-LM
§3, its eq. 1), and bounds each factor by the masked-diffusion ELBO of the block given the clean blocks before it
(BD3-LM §3; MDLM's eq. 10 applied per block), so the NELBO is a sum over blocks:

    L_BD(x) = Σ_b E_{t_b ~ U[0,1]} E_{x_t^b ~ q(·|x^b, t_b)} [ γ'(t_b)/γ(t_b) · Σ_{l masked} −log p_θ(x^b_l | x_t^b, x^{<b}) ].

Here each block gets its own time t_b (as in BD3-LM's training algorithm), drawn antithetically over all the
blocks of the batch, truncated to [t_min, 1], and the same schedules / weightings / masking modes / normalisation
as the bidirectional MDM (``mdlm.masking``, ``mdlm.loss``). One forward over [x_t ; x_0] computes every block's
logits (``mdlm.modeling.block_diffusion``). With one block (block_size = L) this is exactly the MDM loss.

Validation reports the same Monte-Carlo estimator as the MDM's (``mdlm.evaluation.elbo``, the discrete form of
the bound: l ~ U{1..N_b} masked tokens, weight N_b / l), applied per block: nats per eligible token over the same
tokens, so the two are comparable.
"""

from __future__ import annotations

import torch

from ..evaluation.elbo import elbo_nll
from ..loss import LossOutput, diffusion_loss
from ..masking import mask_tokens, sample_times
from ..modeling import MDLMForMaskedLM
from ..modeling.block_diffusion import bd3_logits
from .trainer import MDMTrainer, _unwrap

Tensor = torch.Tensor


def to_blocks(x: Tensor, block_size: int) -> Tensor:
    """(B, L, ...) → (B·L/block_size, block_size, ...): one row per block (row-major order is kept)."""
    B, L = x.shape[:2]
    if L % block_size:
        raise ValueError(f"block_size {block_size} does not divide the sequence length {L}")
    return x.reshape(B * (L // block_size), block_size, *x.shape[2:])


def pad_to_blocks(ids: Tensor, attention_mask: Tensor, eligible: Tensor, block_size: int,
                  fill_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Right-pad a batch (B, L) to a multiple of ``block_size`` columns (random-length or short rows): the new
    columns are padding (never attended, never scored; their id, ``fill_id``, is never read)."""
    extra = -ids.shape[1] % block_size
    if extra == 0:
        return ids, attention_mask, eligible
    F = torch.nn.functional
    return F.pad(ids, (0, extra), value=fill_id), F.pad(attention_mask, (0, extra)), F.pad(eligible, (0, extra))


def bd3_noise(ids: Tensor, eligible: Tensor, block_size: int, schedule, mask_id: int, *, t_min: float,
              antithetic: bool, mode: str, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
    """x_0 → x_t with one time per block. ids, eligible (B, L) → noisy (B, L), masked (B, L) bool, t (B·nb,)."""
    rows = to_blocks(ids, block_size)  # (B·nb, bs)
    t = sample_times(rows.shape[0], t_min=t_min, antithetic=antithetic, device=ids.device, generator=generator)
    noisy, masked = mask_tokens(rows, t, schedule, mask_id, protected=~to_blocks(eligible, block_size), mode=mode,
                                generator=generator)  # (B·nb, bs) each
    return noisy.view_as(ids), masked.view_as(ids), t


def bd3_loss(logits: Tensor, ids: Tensor, masked: Tensor, t: Tensor, schedule, *, eligible: Tensor, block_size: int,
             mask_id: int, weighting: str, normalization: str, fused_ce: bool = False) -> LossOutput:
    """The block-diffusion loss (module docstring). logits (M, V) at ``masked`` (B, L) positions (row-major);
    t (B·nb,) one time per block. Per-row sums in the output; ``normalization`` per token or per sequence."""
    B = ids.shape[0]
    out = diffusion_loss(logits, to_blocks(ids, block_size), to_blocks(masked, block_size), t, schedule,
                         eligible=to_blocks(eligible, block_size), mask_id=mask_id, weighting=weighting,
                         normalization="token", fused_ce=fused_ce)  # per-block sums (B·nb,)
    nll, weighted = out.nll_sum.view(B, -1).sum(1), out.weighted_sum.view(B, -1).sum(1)  # (B,)
    n_tok, n_masked = out.num_tokens.view(B, -1).sum(1), out.num_masked.view(B, -1).sum(1)  # (B,)
    if normalization == "sequence":
        loss = (weighted / n_tok.clamp_min(1.0)).mean()
    else:
        loss = out.loss
    return LossOutput(loss, nll, weighted, n_tok, n_masked)


def bd3_elbo_nll(model: torch.nn.Module, ids: Tensor, *, eligible: Tensor, attention_mask: Tensor | None,
                 mask_id: int, block_size: int, num_samples: int,
                 generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Validation NELBO of a block-diffusion model: ``mdlm.evaluation.elbo.elbo_nll``'s estimator per block, each
    block's x_t conditioned on the clean blocks before it. ids (B, L) → (nll_sum (B,) nats, num_tokens (B,))."""
    B, L = ids.shape

    def logits_fn(noisy_blocks: Tensor, _am) -> Tensor:  # (B·nb, bs) → (B·nb, bs, V)
        logits = bd3_logits(model, noisy_blocks.reshape(B, L), ids, attention_mask, block_size)  # (B, L, V)
        return to_blocks(logits, block_size)

    res = elbo_nll(logits_fn, to_blocks(ids, block_size), eligible=to_blocks(eligible.bool(), block_size),
                   mask_id=mask_id, num_samples=num_samples, generator=generator)
    return res.nll_sum.view(B, -1).sum(1), res.num_tokens.view(B, -1).sum(1)


def check_bd3_model(model: torch.nn.Module) -> int:
    """The block size of a block-diffusion ``MDLMForMaskedLM``; ValueError for any other model."""
    inner = _unwrap(model)
    size = getattr(getattr(inner, "config", None), "block_size", None)
    if not isinstance(inner, MDLMForMaskedLM) or not size:
        raise ValueError("the bd3 objective needs an mdlm model with config.block_size set "
                         "(recipes/train_text.py --objective bd3 --block_size N builds one)")
    return int(size)


class BD3Trainer(MDMTrainer):
    """``MDMTrainer`` (seeded masks per step, crash-safe checkpoints, non-finite stop, resume) with the
    block-diffusion loss and validation NELBO (module docstring); the block size is the model's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.block_size = check_bd3_model(self.model)
        if self.diff.cond_dropout > 0:
            raise ValueError("--cond_dropout (label dropout) is not supported with the bd3 objective")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids, attn, eligible = pad_to_blocks(inputs["input_ids"], inputs["attention_mask"], inputs["eligible"].bool(),
                                            self.block_size, self.mask_token_id)  # (B, L) each
        d = self.diff
        noisy, masked, t = bd3_noise(ids, eligible, self.block_size, self.schedule, self.mask_token_id, t_min=d.t_min,
                                     antithetic=d.antithetic, mode=d.masking, generator=self._generator(ids.device))
        logits = bd3_logits(model, noisy, ids, attn, self.block_size, positions=masked)  # (M, V)
        out = bd3_loss(logits, ids, masked, t, self.schedule, eligible=eligible, block_size=self.block_size,
                       mask_id=self.mask_token_id, weighting=d.weighting, normalization=d.normalization,
                       fused_ce=bool(self.args.torch_compile) and logits.is_cuda)
        self._check_finite(out.loss)
        return (out.loss, out) if return_outputs else out.loss

    def _batch_nll(self, model, batch: dict, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        ids, attn, eligible = pad_to_blocks(batch["input_ids"], batch["attention_mask"], batch["eligible"].bool(),
                                            self.block_size, self.mask_token_id)
        return bd3_elbo_nll(model, ids, eligible=eligible, attention_mask=attn, mask_id=self.mask_token_id,
                            block_size=self.block_size, num_samples=self.diff.eval_num_samples, generator=generator)


def check_bd3_arguments(margs, dargs, block_size: int) -> None:
    """``recipes/train_text.py --objective bd3``: ValueError (one line) for a combination that cannot work; puts
    ``block_size`` into ``margs.model_config`` so a new model's config is checked and records it."""
    import json

    from .build import parse_model_config

    if margs.model_type != "mdlm":
        raise ValueError(f"--objective bd3 trains this project's mdlm transformer, not model_type {margs.model_type!r}")
    if dargs.seq_len % block_size:
        raise ValueError(f"--block_size {block_size} must divide --seq_len {dargs.seq_len} (whole blocks per sequence)")
    extra = parse_model_config(margs.model_config)
    if extra.get("is_causal"):
        raise ValueError("--objective bd3 cannot train a causal model (model_config is_causal=true)")
    margs.model_config = json.dumps({**extra, "block_size": block_size})


def model_corpus_elbo(model: torch.nn.Module, input_ids: Tensor, *, mask_id: int, eligible: Tensor | None = None,
                      batch_size: int = 16, num_samples: int = 1, generator: torch.Generator | None = None,
                      device: str | torch.device = "cpu", desc: str | None = None):
    """``mdlm.evaluation.elbo.corpus_elbo`` for a model: the block-diffusion NELBO (:func:`bd3_elbo_nll`, rows
    right-padded to whole blocks) for a model with ``config.block_size``, the MDM's otherwise. → ``ElboResult``."""
    from ..evaluation.elbo import ElboResult, corpus_elbo
    from ..sampling import as_logits_fn

    size = getattr(getattr(_unwrap(model), "config", None), "block_size", None)
    if not size:
        return corpus_elbo(as_logits_fn(model), input_ids, mask_id=mask_id, eligible=eligible, batch_size=batch_size,
                           num_samples=num_samples, generator=generator, device=device, desc=desc)
    eligible = torch.ones_like(input_ids, dtype=torch.bool) if eligible is None else eligible.bool()
    nll, ntok = [], []
    with torch.no_grad():
        for i in range(0, input_ids.shape[0], batch_size):
            x, e = input_ids[i:i + batch_size].to(device), eligible[i:i + batch_size].to(device)  # (b, L)
            x, am, e = pad_to_blocks(x, e.long(), e, int(size), mask_id)
            s, n = bd3_elbo_nll(model, x, eligible=e, attention_mask=am, mask_id=mask_id, block_size=int(size),
                                num_samples=num_samples, generator=generator)
            nll.append(s.cpu())
            ntok.append(n.cpu())
    if not nll:
        return ElboResult(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    return ElboResult(torch.cat(nll), torch.cat(ntok))


def check_start_model(model: torch.nn.Module, objective: str) -> None:
    """A block-diffusion checkpoint continues only as one: ValueError for ``--objective mdm/ar`` on a model whose
    config has ``block_size`` (its plain forward is block-causal, which the MDM / AR losses do not expect)."""
    size = getattr(getattr(model, "config", None), "block_size", None)
    if size and objective != "bd3":
        raise ValueError(f"--model_name_or_path is a block-diffusion model (block_size {size}); continue it with "
                         f"--objective bd3 --block_size {size}, not --objective {objective}")
