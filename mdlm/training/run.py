"""Start and finish of a training run: output-dir rules, resume resolution, final atomic save."""

from __future__ import annotations

import json
import os

from transformers import TrainingArguments

from .checkpoint import (
    check_checkpoint,
    check_output_dir,
    checkpoint_step,
    clear_failed_start,
    last_checkpoint,
    publish_files,
    read_marker,
    write_marker,
)

_AUTO = {"auto", "true", "yes", "1", "last", "latest"}


def _barrier() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


class RunFinished(Exception):
    """``--resume_from_checkpoint auto`` on a run that already finished: nothing to do, nothing changed."""


def _finished_step(targs: TrainingArguments) -> int | None:
    """The step at which the run in ``output_dir`` finished, when resuming it would train nothing new."""
    marker = read_marker(targs.output_dir) or {}
    done = marker.get("finished")
    if not isinstance(done, dict):
        return None
    step = int(done.get("global_step", 0))
    return step if targs.max_steps <= 0 or targs.max_steps <= step else None


def _resolve_resume(targs: TrainingArguments, want: str) -> str | None:
    if str(want).lower() in _AUTO:
        resume = last_checkpoint(targs.output_dir)
        if resume is None:  # it holds this run's output but nothing to resume: training would replace it from scratch
            final = os.path.isfile(os.path.join(targs.output_dir, "config.json"))
            what = "this run's final model" if final else "this run's output"
            raise ValueError(
                f"output_dir {targs.output_dir!r} holds {what} "
                "but no complete checkpoint to resume from (save_strategy 'no'?): training again would start from "
                "scratch and replace it; choose another --output_dir, or delete it to start over")
    elif os.path.isdir(want):
        resume = want
    else:
        raise ValueError(f"resume_from_checkpoint {want!r} is not a directory")
    if resume is not None:
        check_checkpoint(resume)  # whole safetensors weights + trainer state, or one line naming the file
        if targs.process_index == 0:
            print(f"resuming from {resume}", flush=True)
    return resume


def prepare_run(targs: TrainingArguments, fingerprint: str, recipe: str) -> str | None:
    """Check ``output_dir`` (see ``check_output_dir``), mark it as this run's, and resolve
    ``--resume_from_checkpoint`` (``auto`` = newest complete checkpoint, or a path).
    Returns the checkpoint to resume from, or None. Raises :class:`RunFinished` (before writing
    anything) when the run being resumed already finished at ``max_steps``."""
    want = targs.resume_from_checkpoint
    resume_flag = want is not None and str(want).lower() not in ("", "false", "no", "none", "0")
    if resume_flag and str(want).lower() not in _AUTO and not os.path.isdir(want):
        raise ValueError(f"resume_from_checkpoint {want!r} is not a directory")
    holds = check_output_dir(targs.output_dir, resume_flag, fingerprint)
    if resume_flag and holds != "same-run" and str(want).lower() not in _AUTO:
        raise ValueError(
            f"--resume_from_checkpoint {want} continues the run in --output_dir, but {targs.output_dir} holds no run "
            "to continue: pass that checkpoint's run directory as --output_dir (a ZeRO checkpoint for another world "
            "size: python recipes/consolidate_zero.py CKPT --out NEW, then --output_dir NEW --resume_from_checkpoint auto)")
    resume: str | None = None
    if holds == "same-run":
        done = _finished_step(targs)
        if done is not None:
            raise RunFinished(
                f"{targs.output_dir} holds a finished run (step {done}, max_steps {targs.max_steps}); nothing to "
                "do and nothing changed. Pass a larger --max_steps to train further, or choose another --output_dir"
            )
        resume = _resolve_resume(targs, want)
    targs.resume_from_checkpoint = resume
    _barrier()  # every rank has checked before rank 0 writes
    if targs.process_index == 0:
        if holds == "failed-start":
            print(f"note: {targs.output_dir} holds a run that saved nothing (a failed start); starting afresh", flush=True)
            clear_failed_start(targs.output_dir)
        write_marker(targs.output_dir, {"fingerprint": fingerprint, "recipe": recipe})
    _barrier()
    return resume


def mark_finished(out_dir: str, global_step: int) -> None:
    """Record in the run marker that the run finished (a later ``--resume_from_checkpoint auto`` then
    changes nothing unless ``--max_steps`` grows)."""
    marker = read_marker(out_dir) or {}
    write_marker(out_dir, {**marker, "finished": {"global_step": int(global_step)}})


def train_from(trainer, resume: str | None) -> None:
    """``trainer.train(resume_from_checkpoint=resume)``, except when ``resume`` already reached
    ``max_steps`` (the run was killed during its final save): then the checkpoint is loaded and the run
    only finishes (transformers would train one step past ``max_steps``)."""
    from transformers import TrainerState

    if resume is None or trainer.args.max_steps <= 0 or checkpoint_step(resume) < trainer.args.max_steps:
        trainer.train(resume_from_checkpoint=resume)
        return
    if trainer.is_deepspeed_enabled:
        raise ValueError(f"{resume} already reached max_steps {trainer.args.max_steps}: the run was interrupted "
                         "during its final save; pass a larger --max_steps to continue it")
    if trainer.args.process_index == 0:
        print(f"{resume} already reached max_steps {trainer.args.max_steps}; finishing the run from it", flush=True)
    trainer._load_from_checkpoint(resume)
    trainer.state = TrainerState.load_from_json(os.path.join(resume, "trainer_state.json"))


def save_run_tokenizer(tokenizer, out_dir: str, name: str = "tokenizer") -> str:
    """Save the run-level tokenizer to ``out_dir/name`` through a staging dir and one rename, so an
    interrupted save never leaves a half-written tokenizer that a resume would load."""
    import shutil

    dst = os.path.join(out_dir, name)
    staging = os.path.join(out_dir, f".{name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer.save_pretrained(staging)
    old = os.path.join(out_dir, f".{name}-old")
    if os.path.isdir(dst):  # replaced only now that the new one is whole
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(staging, dst)
    shutil.rmtree(old, ignore_errors=True)
    return dst


def unwrapped_config(model):
    """The config of a model possibly wrapped by DeepSpeed / DDP / peft."""
    m = getattr(model, "module", model)
    return getattr(m, "config", None)


def finish_run(trainer, tokenizer, metrics: dict[str, float], generation_defaults: dict | None = None) -> None:
    """Save the final model (+ tokenizer, generation_config.json, eval_metrics.json, trainer_state.json) through a staging
    dir so a crash mid-save never leaves a half-written model in ``output_dir``; print the ELBO line."""
    out = trainer.args.output_dir
    staging = os.path.join(out, ".final")
    if hasattr(trainer, "check_finite_state"):
        trainer.check_finite_state("the final model")  # never publish NaN weights
    trainer.save_model(staging)  # every rank (ZeRO-3 gathers the weights)
    if trainer.args.should_save:
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        if generation_defaults is not None:
            from ..generation_defaults import save_generation_defaults

            save_generation_defaults(staging, generation_defaults)
        with open(os.path.join(staging, "eval_metrics.json"), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=1)
        trainer.state.save_to_json(os.path.join(staging, "trainer_state.json"))  # the loss / validation curves
        publish_files(staging, out)
        mark_finished(out, trainer.state.global_step)
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
    """A training recipe's ``main`` body: run ``train_fn(argv)``; a non-finite loss / gradient / weight
    (nothing non-finite was saved) is one ``error:`` line and exit status 1; a finished run being resumed
    says so and exits 0; a multi-process run that ends with 0 leaves its process group first. Bad input is left
    to ``run_cli``."""
    import sys

    from .safe_trainer import NonFiniteError

    try:
        train_fn(argv)
    except NonFiniteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except RunFinished as e:
        print(str(e), file=sys.stderr, flush=True)
    _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Destroy the default process group of a finished multi-process run (torch warns when a program exits without
    it; a gloo group left to the interpreter's exit has aborted a rank after its work was done, "terminate called
    without an active exception"). No-op in a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def write_json_atomic(obj, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and one rename."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def final_eval(trainer) -> dict[str, float]:
    """The validation metrics of the model that is saved, reusing a logged evaluation of it where there is one:
    under ``--load_best_model_at_end`` the trainer reloaded the best checkpoint, so the evaluation logged at the
    best step (+ ``eval_best_step``); otherwise the last step's (evaluated now unless the periodic evaluation just
    ran there)."""
    state, args = trainer.state, trainer.args
    best_step = getattr(state, "best_global_step", None) if args.load_best_model_at_end else None
    want = best_step if best_step is not None else state.global_step
    logged = next((h for h in reversed(state.log_history) if "eval_nll" in h and h.get("step") == want), None)
    if logged is None:
        return trainer.evaluate()  # the model in memory is the one saved (the best one, when it was reloaded)
    out = {k: v for k, v in logged.items() if k.startswith("eval_")}
    if best_step is not None:
        if args.process_index == 0:
            print(f"best checkpoint: step {best_step} of {state.global_step} (eval_{args.metric_for_best_model} "
                  f"{state.best_metric:.4f}); it is the saved model", flush=True)
        out["eval_best_step"] = best_step
    return out
