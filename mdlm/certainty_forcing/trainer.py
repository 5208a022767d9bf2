"""``CertaintyForcingTrainer``: transformers' Trainer with the certainty-forcing loss on semi-AR masked trajectories.

* ``compute_loss``: t ~ U(0, 1) per row, :func:`.masking.semi_ar_mask`, the model's logits at the scored positions
  only, :func:`.loss.certainty_forcing_loss`. Masks come from a generator seeded per (seed, step, micro-step, rank)
  (``StepSeededMixin``), so a resumed run sees the masks it would have seen.
* ``evaluate``: on held-out trajectories with fixed masks, the loss's parts and the share of scored positions that
  a Fast-dLLM threshold would commit correctly (argmax = trajectory token and p ≥ ``confident_threshold``) — the
  quantity this training exists to raise.
* Non-finite losses stop training; checkpoints are staged (``SafeCheckpointMixin``).
"""

from __future__ import annotations

import torch
from transformers import Trainer

from ..training.safe_trainer import SafeCheckpointMixin
from ..training.trainer import StepSeededMixin, masked_logits
from .args import DistillArguments
from .loss import certainty_forcing_loss
from .masking import semi_ar_mask


class CertaintyForcingTrainer(SafeCheckpointMixin, StepSeededMixin, Trainer):
    def __init__(self, *args, distill_args: DistillArguments, mask_token_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.dist = distill_args
        self.mask_token_id = int(mask_token_id)

    def _scored_logits(self, model, inputs: dict, g: torch.Generator):
        ids, attn, resp = inputs["input_ids"], inputs["attention_mask"], inputs["response"].bool()  # (B, L) each
        t = torch.rand(ids.shape[0], device=ids.device, generator=g)  # (B,)
        m = semi_ar_mask(resp, self.dist.block_length, t, generator=g)
        noisy = ids.masked_fill(m.masked, self.mask_token_id)  # (B, L)
        index = m.scored.reshape(-1).nonzero().squeeze(1)  # (M,) flat: one host sync (M is random)
        logits = masked_logits(model, noisy, attn, m.scored, index)  # (M, V)
        return logits, ids.reshape(-1)[index]  # (M, V), (M,)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits, targets = self._scored_logits(model, inputs, self._generator(inputs["input_ids"].device))
        out = certainty_forcing_loss(logits, targets, entropy_weight=self.dist.entropy_weight,
                                     temperature=self.dist.certainty_temperature)
        self._check_finite(out.loss)
        return (out.loss, out) if return_outputs else out.loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Means over the held-out scored positions (fixed masks): ``cross_entropy`` (nats), ``accuracy``,
        ``entropy`` (T-scaled, correct positions), ``confident_correct`` (share a threshold would commit right)."""
        ds = eval_dataset if eval_dataset is not None else self.eval_dataset
        if ds is None:
            return {}
        model, was = self.model, self.model.training
        model.eval()
        g = torch.Generator(device=self.args.device).manual_seed(self.args.seed + 7919 + self.args.process_index)
        sums = torch.zeros(4, dtype=torch.float64, device=self.args.device)  # ce, correct, entropy·correct, confident
        n = torch.zeros((), dtype=torch.float64, device=self.args.device)
        with torch.no_grad(), self.autocast_smart_context_manager():
            for batch in self.get_eval_dataloader(ds):
                logits, y = self._scored_logits(model, self._prepare_inputs(batch), g)  # (M, V), (M,)
                out = certainty_forcing_loss(logits, y, temperature=self.dist.certainty_temperature)  # batch means
                p_max, arg = torch.softmax(logits.float(), -1).max(-1)  # (M,) each
                conf = ((arg == y) & (p_max >= self.dist.confident_threshold)).sum()
                m, right = y.numel(), out.accuracy * y.numel()  # means → sums over the batch's positions
                sums += torch.stack([out.cross_entropy * m, right, out.entropy * right, conf]).double()
                n += m
        sums, n = self.accelerator.reduce(sums, "sum"), self.accelerator.reduce(n, "sum")
        ce, right, ent, conf = (sums / n.clamp_min(1)).tolist()
        metrics = {f"{metric_key_prefix}_cross_entropy": ce, f"{metric_key_prefix}_accuracy": right,
                   f"{metric_key_prefix}_entropy": ent / max(right, 1e-12),
                   f"{metric_key_prefix}_confident_correct": conf, f"{metric_key_prefix}_positions": float(n)}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        model.train(was)
        return metrics
