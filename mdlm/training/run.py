"""Start and finish of a training run: output-dir rules, resume resolution, final atomic save."""

from __future__ import annotations

import json
import os

from transformers import TrainingArguments

from .checkpoint import RUN_MARKER, check_output_dir, last_checkpoint, publish_files

_AUTO = {"auto", "true", "yes", "1", "last", "latest"}


def _barrier() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def prepare_run(targs: TrainingArguments, fingerprint: str, recipe: str) -> str | None:
    """Check ``output_dir`` (see ``check_output_dir``), mark it as this run's, and resolve
    ``--resume_from_checkpoint`` (``auto`` = newest complete checkpoint, or a path).
    Returns the checkpoint to resume from, or None."""
    want = targs.resume_from_checkpoint
    resume_flag = want is not None and str(want).lower() not in ("", "false", "no", "none", "0")
    check_output_dir(targs.output_dir, resume_flag, fingerprint)
    resume: str | None = None
    if resume_flag:
        if str(want).lower() in _AUTO:
            resume = last_checkpoint(targs.output_dir)
            if resume is None and targs.process_index == 0:
                print(f"no complete checkpoint in {targs.output_dir}; starting from scratch", flush=True)
        elif os.path.isdir(want):
            resume = want
        else:
            raise ValueError(f"resume_from_checkpoint {want!r} is not a directory")
    targs.resume_from_checkpoint = resume
    _barrier()  # every rank has checked before rank 0 writes the marker
    if targs.process_index == 0:
        os.makedirs(targs.output_dir, exist_ok=True)
        with open(os.path.join(targs.output_dir, RUN_MARKER), "w", encoding="utf-8") as f:
            json.dump({"fingerprint": fingerprint, "recipe": recipe}, f)
    _barrier()
    return resume


def unwrapped_config(model):
    """The config of a model possibly wrapped by DeepSpeed / DDP / peft."""
    m = getattr(model, "module", model)
    return getattr(m, "config", None)


def finish_run(trainer, tokenizer, metrics: dict[str, float], generation_defaults: dict | None = None) -> None:
    """Save the final model (+ tokenizer, generation_config.json, eval_metrics.json) through a staging
    dir so a crash mid-save never leaves a half-written model in ``output_dir``; print the ELBO line."""
    out = trainer.args.output_dir
    staging = os.path.join(out, ".final")
    trainer.save_model(staging)  # every rank (ZeRO-3 gathers the weights)
    if trainer.args.should_save:
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        if generation_defaults is not None:
            from ..generation_defaults import save_generation_defaults

            save_generation_defaults(staging, generation_defaults)
        with open(os.path.join(staging, "eval_metrics.json"), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=1)
        publish_files(staging, out)
        if "eval_nll" in metrics:
            exact = bool(getattr(unwrapped_config(trainer.model), "is_causal", False))  # AR baseline: exact NLL
            what, rel = ("validation NLL", "=") if exact else ("validation ELBO", "≤")
            print(
                f"{what}: {metrics['eval_nll']:.4f} nats/token | {metrics['eval_bits_per_token']:.4f} "
                f"bits/token | perplexity {rel} {metrics['eval_ppl']:.2f} | saved to {out}",
                flush=True,
            )
    _barrier()


def run_recipe(train_fn, argv: list[str] | None = None) -> int:
    """A training recipe's ``main`` body: run ``train_fn(argv)``; a non-finite loss (the last good
    checkpoint is kept) is one ``error:`` line and exit status 1. Bad input is left to ``run_cli``."""
    import sys

    from .trainer import NonFiniteLossError

    try:
        train_fn(argv)
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
