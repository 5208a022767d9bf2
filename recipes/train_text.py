"""Train a masked-diffusion language model on text with the MDM ELBO.

Launch (the same script on 1 or N processes):

    # one process (CPU or one GPU); the embedded default: tiny model on Shakespeare, a few CPU minutes
    python recipes/train_text.py --config recipes/configs/shakespeare_tiny.yaml
    # overrides: any --key of the config / TrainingArguments
    python recipes/train_text.py --config recipes/configs/shakespeare_tiny.yaml --max_steps 50 --output_dir runs/x
    # DeepSpeed, N GPUs (ZeRO-1/2/3 configs in recipes/deepspeed/)
    deepspeed --num_gpus 2 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml \\
        --deepspeed recipes/deepspeed/zero2.json
    # torchrun (plain DDP)
    torchrun --nproc_per_node 2 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml
    # block diffusion (BD3-LM): blocks of 16 tokens, exact K/V cache when decoding (docs/block_diffusion.md)
    python recipes/train_text.py --config recipes/configs/gpt2_125m.yaml --objective bd3 --block_size 16
    # speed: tokens/s and MFU (against the bf16 peak measured on the GPU) per log; a torch.profiler table of steps 51-55
    python recipes/train_text.py --config recipes/configs/gpt2_125m.yaml --max_steps 100 --profile_steps 50:5
    # resume the newest complete checkpoint of --output_dir
    python recipes/train_text.py --config recipes/configs/shakespeare_tiny.yaml --resume_from_checkpoint auto

Writes ``output_dir/`` as an HF checkpoint (config.json, model.safetensors, tokenizer files,
generation_config.json) loadable with ``AutoModelForMaskedLM.from_pretrained`` after ``import mdlm``.
"""

from __future__ import annotations

import json
import os

import torch

import mdlm  # noqa: E402  (registers the model with the Auto classes)
from mdlm.cli import parse_config_and_args, run_cli  # noqa: E402
from mdlm.training import (  # noqa: E402
    DataArguments,
    DiffusionArguments,
    MDMCollator,
    MDMTrainer,
    ModelArguments,
)
from mdlm.training.ar import ARTrainer, ObjectiveArguments  # noqa: E402
from mdlm.training.bd3 import BD3Trainer, check_bd3_arguments, check_start_model  # noqa: E402
from mdlm.training.build import build_model, build_text_data, run_fingerprint  # noqa: E402
from mdlm.training.objective import record_objective  # noqa: E402
from mdlm.training.throughput import ThroughputArguments, throughput_callbacks  # noqa: E402
from mdlm.training.run import finish_run, prepare_run, run_recipe, save_run_tokenizer, train_from  # noqa: E402
from transformers import AutoTokenizer, TrainingArguments, set_seed  # noqa: E402


def text_generation_defaults(tok, seq_len: int = 256, block_size: int | None = None) -> dict:
    """Sampler defaults stored in generation_config.json (recipes/generate.py starts from them): LLaDA's
    greedy low-confidence decoding, 2 tokens per step, 128 tokens (at most half the trained context, so a
    prompt fits beside it), semi-AR blocks of 32 — or, for a block-diffusion model, blocks of its block size
    decoded with the exact cache (at least one step per block)."""
    gen_length = min(128, seq_len // 2)
    if block_size:
        return {**text_generation_defaults(tok, seq_len), "block_length": block_size,
                "steps": max(gen_length // 2, -(-gen_length // block_size)), "cache_implementation": "block_exact"}
    return {
        "mask_token_id": tok.mask_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "steps": max(1, gen_length // 2),
        "gen_length": gen_length,
        "block_length": min(32, gen_length),
        "temperature": 0.0,
        "remasking": "low_confidence",
        "confidence": "prob",
        "schedule": "even",
    }


def train(argv: list[str] | None = None, callbacks: tuple = ()) -> MDMTrainer:
    """The whole recipe; returns the trainer (tests drive it in-process). Raises on bad input."""
    margs, dargs, diff, targs, obj, speed = parse_config_and_args(
        (ModelArguments, DataArguments, DiffusionArguments, TrainingArguments, ObjectiveArguments,
         ThroughputArguments), argv
    )
    fingerprint = run_fingerprint(margs, dargs, diff)
    if obj.objective == "ar":  # the causal baseline (mdlm/training/ar.py): same transformer, causal attention
        fingerprint += "-ar"
        if margs.model_type != "mdlm" or margs.model_name_or_path:
            raise ValueError("--objective ar builds a new causal mdlm model: use model_type mdlm, no model_name_or_path")
        margs.model_config = json.dumps({**json.loads(margs.model_config or "{}"), "is_causal": True})
    if obj.objective == "bd3":  # block diffusion (mdlm/training/bd3.py): same transformer, block-causal attention
        fingerprint += f"-bd3-{obj.block_size}"
        check_bd3_arguments(margs, dargs, obj.block_size)
    resume = prepare_run(targs, fingerprint, recipe="train_text")
    saved_tok = os.path.join(targs.output_dir, "tokenizer")
    tok_override = AutoTokenizer.from_pretrained(saved_tok) if resume and os.path.isdir(saved_tok) else None
    tok, train, val = build_text_data(dargs, tok_override, seed=targs.seed)
    if targs.should_save and tok_override is None:
        save_run_tokenizer(tok, targs.output_dir)  # staged: never a half-written tokenizer/
    set_seed(targs.seed)  # the initial weights depend on the seed only, not on what ran before
    model = build_model(margs, tok, dargs.seq_len)
    check_start_model(model, obj.objective)
    if obj.objective == "bd3":
        model.config.block_size = obj.block_size  # config.json records it; a start checkpoint becomes a bd3 model
    record_objective(model.config, diff, obj.objective, obj.block_size)  # the checkpoint says how it was trained
    n_params = sum(p.numel() for p in model.parameters())
    if targs.process_index == 0:
        print(
            f"model: {n_params / 1e6:.2f}M parameters | train {len(train)} × {dargs.seq_len} tokens | "
            f"validation {len(val)} sequences | vocab {len(tok)}",
            flush=True,
        )
    targs.remove_unused_columns = False
    if torch.cuda.is_available() and targs.dataloader_pin_memory:
        targs.accelerator_config.non_blocking = True  # pinned batches copied without a host synchronisation
    speed_cbs = throughput_callbacks(model.config, margs, dargs, diff, targs, obj, speed)
    callbacks = speed_cbs + tuple(callbacks)
    trainer_cls, extra = {"ar": (ARTrainer, {"start_id": tok.eos_token_id}), "bd3": (BD3Trainer, {})}.get(
        obj.objective, (MDMTrainer, {}))
    trainer = trainer_cls(
        model=model,
        args=targs,
        train_dataset=train,
        eval_dataset=val,
        data_collator=MDMCollator(tok.pad_token_id),
        processing_class=tok,
        diffusion_args=diff,
        mask_token_id=tok.mask_token_id,
        callbacks=list(callbacks),
        **extra,
    )
    train_from(trainer, resume)
    steady = speed_cbs[0].summary(targs.world_size) if speed_cbs else {}
    if speed_cbs and not steady and targs.process_index == 0:
        print("throughput: no steady logging interval (the first is warm-up; evaluations, saves and profiled steps "
              "are left out): log more often (--logging_steps) or train longer for a steady-state figure", flush=True)
    if steady and targs.process_index == 0:
        mfu = f", MFU {steady['mfu']:.1%} of {steady['peak_tflops']:.0f} TFLOP/s" if torch.cuda.is_available() else ""
        print(f"throughput over {steady['steady_steps']} steady steps (warm-up, evaluation and saves excluded): "
              f"{steady['tokens_per_s']:,.0f} tokens/s ({steady['tokens_per_s_per_gpu']:,.0f} per device){mfu}", flush=True)
    metrics = trainer.evaluate()
    metrics.update({f"train_{k}": v for k, v in steady.items()})
    defaults = text_generation_defaults(tok, dargs.seq_len, obj.block_size)
    from mdlm.training.generation_check import checked_generation_defaults  # greedy degenerate → measured fallback
    defaults = checked_generation_defaults(trainer.model, tok, defaults, seed=targs.seed, world_size=targs.world_size)
    finish_run(trainer, tok, metrics, defaults)
    if diff.sample_on_end and targs.world_size == 1 and obj.objective in ("mdm", "bd3"):  # ZeRO-3 would need every rank in the forward
        print_samples(trainer.model, tok, defaults, diff.sample_on_end, dargs.seq_len, targs.seed)
    return trainer


def print_samples(model, tok, defaults: dict, n: int, seq_len: int, seed: int) -> None:
    """A few samples from the trained model, unconditional and after a prompt, drawn from the model's own
    distribution (temperature 1, random unmasking order: the ancestral MDM sampler). Greedy
    confidence-ordered decoding (the checkpoint's default, LLaDA-style) is better for well-trained models
    but collapses to newlines on a model trained for a few CPU minutes."""
    from mdlm.pipelines.text import generate_text, sampler_config_from

    gen_length = min(64, seq_len // 2)
    block = getattr(model.config, "block_size", None) or gen_length // 2  # a bd3 model decodes its own blocks
    config, _ = sampler_config_from(defaults, {"gen_length": gen_length, "steps": gen_length,
                                               "block_length": block, "temperature": 1.0,
                                               "remasking": "random"})
    prompts = ([""] + ["ROMEO:\n", "KING HENRY:\n"])[:n] if n > 0 else []
    was = model.training
    model.eval()
    texts, out = generate_text(model, tok, prompts, config, gen_length, seed=seed)
    model.train(was)
    for p, t in zip(prompts, texts):
        head = f"--- sample after {p.strip()!r}" if p else "--- unconditional sample"
        print(f"{head} (ancestral, {config.steps} steps, {gen_length} tokens, {out.nfe} NFE)\n{p}{t}", flush=True)


@run_cli
def main() -> int:
    return run_recipe(train)


if __name__ == "__main__":
    main()
