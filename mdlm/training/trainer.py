"""``MDMTrainer``: transformers' Trainer with the masked-diffusion loss and an ELBO evaluation.

* ``compute_loss`` samples t (antithetic over the batch), masks x0 → x_t (``mdlm.masking``),
  applies label dropout to the condition, and returns the weighted cross-entropy of ``mdlm.loss``.
  The masking RNG is a generator seeded from (seed, global step, micro-step, rank), so a resumed
  run sees exactly the masks it would have seen.
* A non-finite loss, gradient or weight stops training (``NonFiniteError``) and no checkpoint holding
  it is written (``mdlm.training.safe_trainer.SafeCheckpointMixin``).
* ``evaluate`` reports the NELBO (``mdlm.evaluation.elbo``) as nats/token, bits/token and perplexity bound,
  with fixed masks so successive evaluations are comparable.
* Checkpoints are staged and renamed into place when complete (the same mixin).
"""

from __future__ import annotations

import math

import torch
from transformers import Trainer

from ..evaluation.elbo import elbo_nll
from ..loss import diffusion_loss
from ..masking import mask_tokens, sample_times
from ..modeling import MDLMForMaskedLM
from ..schedules import get_schedule
from .args import DiffusionArguments
from .safe_trainer import NonFiniteError, NonFiniteLossError, SafeCheckpointMixin

__all__ = ["MDMTrainer", "NonFiniteError", "NonFiniteLossError", "StepSeededMixin", "masked_logits"]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Peel DDP / DeepSpeed / torch.compile / peft wrappers down to the transformers model."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "get_base_model") and model.get_base_model() is not model:
            model = model.get_base_model()
        else:
            return model


def masked_logits(model: torch.nn.Module, noisy: torch.Tensor, attention_mask: torch.Tensor | None,
                  masked: torch.Tensor, index: torch.Tensor | None = None):
    """Logits at masked positions only, (M, V). Our model skips the LM head elsewhere (``index``: the same
    positions as (M,) flat indices, which the model gathers without a host synchronisation), and so does an
    adapted causal LM with a plain head (``supports_logits_positions``); any other HF masked-LM returns
    (B, L, V), which is then indexed."""
    inner = _unwrap(model)
    where = masked if index is None else index
    if index is not None:  # M changes every step: a compiled model's first graph takes any M (no recompile)
        torch._dynamo.maybe_mark_dynamic(index, 0)
    # ours, or an adapted causal LM with a plain head: the LM head at masked rows only. Flat indices rather than the
    # bool mask: gathering by a bool mask has a data-dependent shape, which breaks a compiled model's graph in two
    if isinstance(inner, MDLMForMaskedLM) or getattr(inner, "supports_logits_positions", False):
        logits = model(input_ids=noisy, attention_mask=attention_mask, logits_positions=where).logits
    else:
        logits = model(input_ids=noisy, attention_mask=attention_mask).logits
    return logits[masked] if logits.dim() == 3 else logits


class StepSeededMixin:
    """``_generator(device)``: the masking RNG of one micro-batch, seeded from (seed, global step, micro-step, rank),
    so a resumed run sees exactly the masks it would have seen (for any Trainer subclass)."""

    _micro: tuple[int, int] = (-1, 0)

    def _generator(self, device: torch.device) -> torch.Generator:
        step = self.state.global_step
        micro = self._micro[1] + 1 if self._micro[0] == step else 0
        self._micro = (step, micro)
        # the global micro-batch index: the same masks on W ranks as on one rank with W× gradient accumulation
        seed = (self.args.seed * 1_000_003 + step * 1009 + (micro * self.args.world_size + self.args.process_index) * 101) % (2**63)
        return torch.Generator(device=device).manual_seed(seed)


class MDMTrainer(SafeCheckpointMixin, StepSeededMixin, Trainer):
    def __init__(self, *args, diffusion_args: DiffusionArguments, mask_token_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.diff = diffusion_args
        self.mask_token_id = int(mask_token_id)
        self.schedule = get_schedule(diffusion_args.schedule)

    # ---- loss -------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = inputs["input_ids"]  # (B, L)
        attn = inputs["attention_mask"]  # (B, L)
        eligible = inputs["eligible"].bool()  # (B, L)
        g = self._generator(ids.device)
        t = sample_times(
            ids.shape[0], t_min=self.diff.t_min, antithetic=self.diff.antithetic, device=ids.device, generator=g
        )  # (B,)
        noisy, masked = mask_tokens(
            ids, t, self.schedule, self.mask_token_id, protected=~eligible, mode=self.diff.masking, generator=g
        )
        if self.diff.cond_dropout > 0 and "cond_mask" in inputs:
            drop = torch.rand(ids.shape[0], device=ids.device, generator=g) < self.diff.cond_dropout  # (B,)
            noisy = noisy.masked_fill(inputs["cond_mask"].bool() & drop[:, None], self.mask_token_id)
        index = masked.reshape(-1).nonzero().squeeze(1)  # (M,) flat: the step's one host sync (M is random)
        unpadded = inputs.get("padded") is False  # the collator said so on the host: no all() check on the GPU
        logits = masked_logits(model, noisy, None if unpadded else attn, masked, index)  # (M, V)
        out = diffusion_loss(
            logits,
            ids,
            masked,
            t,
            self.schedule,
            eligible=eligible,
            mask_id=self.mask_token_id,
            weighting=self.diff.weighting,
            normalization=self.diff.normalization,
            fused_ce=bool(self.args.torch_compile) and logits.is_cuda,  # compiled model → compiled loss too
            index=index,
        )
        self._check_finite(out.loss)
        return (out.loss, out) if return_outputs else out.loss

    # ---- evaluation -------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Validation NLL over every eligible token (``_batch_nll`` per batch), summed over ranks. Under DDP the
        per-row sums are gathered with ``gather_for_metrics``, which drops the rows accelerate repeats to give every
        rank an equal share, so each validation row counts exactly once whatever the world size."""
        ds = eval_dataset if eval_dataset is not None else self.eval_dataset
        if ds is None:
            return {}
        loader = self.get_eval_dataloader(ds)
        model = self.model
        was_training = model.training
        model.eval()
        dev = self.args.device
        g = torch.Generator(device=dev).manual_seed(self.args.seed + 7919 + self.args.process_index)
        nll = torch.zeros((), dtype=torch.float64, device=dev)
        ntok = torch.zeros((), dtype=torch.float64, device=dev)
        with torch.no_grad(), self.autocast_smart_context_manager():
            for batch in loader:
                s, n = self._batch_nll(model, self._prepare_inputs(batch), g)  # (B,) each
                s, n = self.accelerator.gather_for_metrics((s.double(), n.double()))  # (B·W − repeats,) each
                nll += s.sum()
                ntok += n.sum()
        return self._report_nll(nll, ntok, metric_key_prefix, model, was_training)

    def _batch_nll(self, model, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(NLL sum, scored tokens) per row of one batch: the MC ELBO bound (MDLM / LLaDA eq. of the NELBO)."""
        res = elbo_nll(
            lambda x, am: model(input_ids=x, attention_mask=am).logits,
            batch["input_ids"],
            eligible=batch["eligible"],
            mask_id=self.mask_token_id,
            attention_mask=batch["attention_mask"],
            num_samples=self.diff.eval_num_samples,
            generator=generator,
        )
        return res.nll_sum, res.num_tokens

    def _report_nll(self, nll, ntok, metric_key_prefix: str, model, was_training: bool) -> dict[str, float]:
        """Log nats, bits/token and perplexity of the NLL / token totals (already gathered over ranks), fire
        on_evaluate."""
        if float(ntok) == 0:
            n = len(self.eval_dataset) if self.eval_dataset is not None else 0
            raise ValueError(
                f"the validation scored no tokens ({n} sequences; per_device_eval_batch_size "
                f"{self.args.per_device_eval_batch_size} × {self.args.world_size} process(es)"
                f"{', dataloader_drop_last drops a partial batch' if self.args.dataloader_drop_last else ''}): "
                "lower --per_device_eval_batch_size or raise --max_eval_sequences")
        nats = float(nll / ntok.clamp_min(1))
        metrics = {
            f"{metric_key_prefix}_nll": nats,
            f"{metric_key_prefix}_bits_per_token": nats / math.log(2.0),
            f"{metric_key_prefix}_ppl": math.exp(min(nats, 700.0)),
            f"{metric_key_prefix}_tokens": float(ntok),
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        model.train(was_training)
        return metrics
