"""``SafeCheckpointMixin``: what every Trainer of the project adds to transformers' ``Trainer`` so a good
result is never lost or silently replaced.

* Crash-safe checkpoints: written to ``OUTPUT/.staging/checkpoint-N`` and renamed into place when
  complete (``mdlm.training.checkpoint``): a kill mid-save never leaves a broken newest checkpoint.
* Finite or nothing: before a checkpoint is written every parameter, buffer and optimizer-state tensor
  is checked (on every rank); a NaN/inf anywhere stops training with :class:`NonFiniteError` and
  nothing is written. Gradients are checked before each optimizer step (not under fp16 loss scaling,
  where an inf gradient is a normal skipped step, nor under DeepSpeed, which owns the gradients).
  With a fused Adam/AdamW (``--optim adamw_torch_fused``) the loss and gradient checks run on the device, without a
  host synchronisation per step: a non-finite loss or gradient norm makes the fused optimizer skip that update
  (its ``found_inf`` input, as under AMP's GradScaler), and training stops with the same error at the next log, save
  or end of training — so the weights still never take a NaN step. (A finite gradient whose global norm overflows
  float32 counts as non-finite there.)
* No pickled objects: ``training_args.bin`` (a pickled ``TrainingArguments``, which only an unsafe
  ``torch.load`` can read and nothing here reads) is replaced by ``training_args.json``. The optimizer /
  scheduler / RNG state files stay ``torch.save``'d tensors: transformers reads them back with
  ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import os
import shutil

import torch
from transformers import TrainerCallback

from ..weights import nonfinite_names
from .checkpoint import STAGING, last_checkpoint, publish_checkpoint

TRAINING_ARGS_PICKLE = "training_args.bin"
TRAINING_ARGS_JSON = "training_args.json"


class NonFiniteError(RuntimeError):
    """Training produced a NaN/inf (loss, gradient or weight); nothing non-finite was saved."""


class NonFiniteLossError(NonFiniteError):
    """The loss itself became NaN/inf."""


def kept_checkpoint_note(output_dir: str) -> str:
    """What is left on disk, said truthfully: the newest complete checkpoint, or that there is none."""
    ckpt = last_checkpoint(output_dir)
    if ckpt is None:
        return f"no checkpoint of this run was written to {output_dir}"
    return f"the newest checkpoint, {ckpt}, is untouched"


def _optimizer_tensors(optimizer) -> list[tuple[str, torch.Tensor]]:
    state = getattr(optimizer, "state", None)
    if not isinstance(state, dict):  # DeepSpeed keeps its own (partitioned) state
        return []
    out = []
    for i, s in enumerate(state.values()):
        for k, v in (s.items() if isinstance(s, dict) else ()):
            if isinstance(v, torch.Tensor):
                out.append((f"optimizer.state[{i}].{k}", v))
    return out


def _fused_optimizer(optimizer) -> torch.optim.Optimizer | None:
    """The torch optimizer under accelerate's wrapper when it is a fused Adam/AdamW (takes ``found_inf``)."""
    inner = getattr(optimizer, "optimizer", optimizer)
    ok = isinstance(inner, (torch.optim.Adam, torch.optim.AdamW)) and inner.defaults.get("fused")
    return inner if ok else None


class _GradientGuard(TrainerCallback):
    def __init__(self, trainer):
        self.trainer = trainer

    def on_log(self, args, state, control, **kw):
        self.trainer.raise_if_flagged()

    def on_pre_optimizer_step(self, args, state, control, **kw):
        t = self.trainer
        if args.fp16 or t.is_deepspeed_enabled:
            return
        if t._deferred_checks():
            t._flag_nonfinite_grads()
            return
        named = [(n, p.grad) for n, p in t.model.named_parameters() if p.grad is not None]
        # fast path: one fused norm over all gradients and one host sync per step; a NaN/inf gradient makes its
        # norm non-finite (so can an overflowing huge finite one: the exact per-tensor check then decides)
        norms = torch._foreach_norm([g for _, g in named]) if named else []
        finite = bool(torch.stack([x.float().to(norms[0].device) for x in norms]).isfinite().all()) if norms else True
        bad = [] if finite else nonfinite_names(named)
        if t._any_rank(bool(bad)):
            where = f" ({', '.join(bad[:3])}{', …' if len(bad) > 3 else ''})" if bad else ""
            raise NonFiniteError(
                f"gradients became NaN/inf at step {state.global_step + 1}{where} with a finite loss; training "
                f"stopped before the optimizer step; {kept_checkpoint_note(args.output_dir)} "
                "(lower --learning_rate or set --max_grad_norm)"
            )


class SafeCheckpointMixin:
    """Mix in before ``transformers.Trainer``: ``class MyTrainer(SafeCheckpointMixin, Trainer)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._staging_dir: str | None = None
        self._bad_step: torch.Tensor | None = None  # device: first step with a non-finite loss/grad (0 = none)
        self._bad_kind: torch.Tensor | None = None  # device: 1 = loss, 2 = gradient
        self._grad_norm: torch.Tensor | None = None
        self.add_callback(_GradientGuard(self))

    # ---- device-side finiteness (fused optimizer: no host sync per step) ---------------------
    def _deferred_checks(self) -> bool:
        return (not self.args.fp16 and not self.is_deepspeed_enabled and self.optimizer is not None
                and _fused_optimizer(self.optimizer) is not None)

    def _clip_grad_norm(self, model):
        self._grad_norm = super()._clip_grad_norm(model)
        return self._grad_norm

    def _flag(self, bad: torch.Tensor, kind: int) -> None:
        """Record (on the device) the first step at which ``bad`` (a bool scalar tensor) held."""
        if self._bad_step is None:
            self._bad_step = torch.zeros((), dtype=torch.int64, device=bad.device)
            self._bad_kind = torch.zeros((), dtype=torch.int64, device=bad.device)
        new = bad & (self._bad_step == 0)
        self._bad_kind = torch.where(new, kind, self._bad_kind)
        self._bad_step = torch.where(new, self.state.global_step + 1, self._bad_step)

    def _flag_nonfinite_grads(self) -> None:
        """Flag a non-finite global gradient norm and make the fused optimizer skip this update."""
        norm = self._grad_norm if isinstance(self._grad_norm, torch.Tensor) else None
        if norm is None:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            if not grads:
                return
            norm = torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads]))
        bad = ~torch.isfinite(norm.float())
        self._flag(bad, 2)
        _fused_optimizer(self.optimizer).found_inf = bad.float()

    def raise_if_flagged(self) -> None:
        """Raise the NonFinite error recorded on the device by the deferred checks (one host sync)."""
        if self._bad_step is None:
            return
        step = self.accelerator.reduce(self._bad_step.clone(), reduction="max")
        kind = int(self.accelerator.reduce(torch.where(self._bad_step == step, self._bad_kind, 0), reduction="max"))
        step = int(step)
        if not step:
            return
        note = kept_checkpoint_note(self.args.output_dir)
        what = "loss" if kind == 1 else "gradients"
        err = NonFiniteLossError if kind == 1 else NonFiniteError
        raise err(f"{what} became NaN/inf at step {step}; the optimizer skipped that update and training stopped at "
                  f"step {self.state.global_step}; {note} (lower --learning_rate or set --max_grad_norm)")

    def _any_rank(self, flag: bool) -> bool:
        t = torch.tensor([float(flag)], device=self.args.device)
        return bool(self.accelerator.reduce(t, reduction="sum").item() > 0)

    def check_finite_state(self, what: str) -> None:
        """Raise :class:`NonFiniteError` when any weight / buffer / optimizer-state tensor is non-finite
        on any rank. ``what``: the save this guards, for the message."""
        named = list(self.model.named_parameters()) + list(self.model.named_buffers())
        bad = nonfinite_names(named + _optimizer_tensors(self.optimizer))
        if self._any_rank(bool(bad)):
            shown = f" ({', '.join(bad[:3])}{', …' if len(bad) > 3 else ''})" if bad else ""
            raise NonFiniteError(
                f"weights became NaN/inf by step {self.state.global_step}{shown}; training stopped and {what} was "
                f"not written; {kept_checkpoint_note(self.args.output_dir)} (lower --learning_rate or set --max_grad_norm)"
            )

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop training on a NaN/inf loss before the optimizer step (the saved checkpoints stay good); with a fused
        optimizer the check is recorded on the device and raised at the next log / save (see the module doc)."""
        if self.model.training and self._deferred_checks():
            self._flag(~torch.isfinite(loss.detach()), 1)
            return
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"loss became {loss.item()} at step {self.state.global_step + 1}; training stopped; "
                f"{kept_checkpoint_note(self.args.output_dir)}"
            )

    # ---- files ------------------------------------------------------------------------------
    def _issue_warnings_after_load(self, load_result) -> None:
        """Reloading the best checkpoint (``load_best_model_at_end``): a tied weight (the LM head = the input
        embedding) is stored once, so its key is "missing" by design; re-tie it instead of warning that the loaded
        model lacks it (transformers only exempts ``_keys_to_ignore_on_save``)."""
        model = self.model
        tied = getattr(model, "_tied_weights_keys", None) or {}
        if tied and getattr(getattr(model, "config", None), "tie_word_embeddings", False):
            missing = [k for k in load_result.missing_keys if k not in tied]
            if len(missing) < len(load_result.missing_keys):
                model.tie_weights()
                load_result = load_result._replace(missing_keys=missing)
        super()._issue_warnings_after_load(load_result)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        out = output_dir if output_dir is not None else self.args.output_dir
        pickle = os.path.join(out, TRAINING_ARGS_PICKLE)
        if self.args.should_save and os.path.isfile(pickle):
            os.remove(pickle)
            with open(os.path.join(out, TRAINING_ARGS_JSON), "w", encoding="utf-8") as f:
                f.write(self.args.to_json_string())

    # ---- crash-safe checkpoints -------------------------------------------------------------
    def _get_output_dir(self, trial):
        return self._staging_dir or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        self.check_finite_state(f"checkpoint-{self.state.global_step}")
        run_dir = super()._get_output_dir(trial)
        staging = os.path.join(run_dir, STAGING)
        if self.args.should_save and os.path.isdir(staging):
            shutil.rmtree(staging)  # leftovers of a save that was killed
        self.accelerator.wait_for_everyone()
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        name = f"checkpoint-{self.state.global_step}"
        best = self.state.best_model_checkpoint
        if best and os.path.dirname(os.path.normpath(best)) == staging:  # --load_best_model_at_end: the published path
            self.state.best_model_checkpoint = os.path.join(run_dir, os.path.basename(os.path.normpath(best)))
            if self.args.should_save:
                self.state.save_to_json(os.path.join(staging, name, "trainer_state.json"))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            publish_checkpoint(run_dir, name, self.args.save_total_limit)
        self.accelerator.wait_for_everyone()
