"""Turn a pretrained causal LM (Llama / Qwen2 / GPT-2 family, HF dir or GGUF) into a masked-diffusion LM by continued
training with the MDM ELBO (bidirectional attention, [MASK] added; LoRA or full fine-tuning).

    # CPU smoke run: a tiny random Llama, a few steps (the tests' config)
    python recipes/adapt_ar.py --config recipes/configs/adapt_tiny_cpu.yaml --output_dir runs/adapt_tiny
    # tokenise the corpora once into a small file (to carry to a GPU machine)
    python recipes/adapt_ar.py --config recipes/configs/adapt_smollm2_gpu.yaml --data wiki+gcide+fortunes \\
        --prepare_data .data/adapt_smollm2.npz --prepare_max_tokens '{"gcide": 3000000}'
    # SmolLM2-135M on one GPU, LoRA, ~6 minutes (eval/gpu/adapt_smollm2.sh runs it with the numbers of docs/backbones.md)
    python recipes/adapt_ar.py --config recipes/configs/adapt_smollm2_gpu.yaml --source DIR --gguf_file F.gguf \\
        --data .data/adapt_smollm2.npz --output_dir runs/smollm2_mdm
    # the adapter's base on any machine (CPU): the source with [MASK], un-trained; then generate with the adapter
    python recipes/adapt_ar.py --config recipes/configs/adapt_smollm2_gpu.yaml --source DIR --gguf_file F.gguf \\
        --base_only true --output_dir runs/smollm2_mdm_base
    python recipes/generate.py --model runs/smollm2_mdm_base --adapter runs/smollm2_mdm --prompt "The ocean"
    # DiffuLLaMA's attention-mask annealing (causal → bidirectional over the first 200 steps), any run above:
    python recipes/adapt_ar.py --config recipes/configs/adapt_tiny_cpu.yaml --attention_anneal_steps 200 ...

DeepSpeed / torchrun work as for recipes/train_text.py (``--deepspeed recipes/deepspeed/zero2.json``).
Output: with LoRA an adapter dir (peft files + base fingerprint + tokenizer + generation_config.json), else a full
``AutoModelForMaskedLM`` checkpoint; ``--results_json`` gets the ELBO/AR-perplexity curve and the speed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict


import mdlm  # noqa: E402,F401
from mdlm.adapt import build as B  # noqa: E402
from mdlm.adapt.args import AdaptArguments  # noqa: E402
from mdlm.cli import parse_config_and_args, refuse_overwrite, run_cli  # noqa: E402
from mdlm.lora import LoraArguments, apply_lora, count_parameters, save_adapter  # noqa: E402
from mdlm.training import DiffusionArguments, MDMCollator  # noqa: E402
from mdlm.training.callbacks import TimeBudget  # noqa: E402
from mdlm.training.checkpoint import publish_files  # noqa: E402
from mdlm.training.compile_mode import regional_compilation  # noqa: E402
from mdlm.training.run import prepare_run, run_recipe  # noqa: E402
from mdlm.training.throughput import steady_intervals  # noqa: E402
from transformers import TrainingArguments, set_seed  # noqa: E402

H200_BF16_PEAK = 772e12  # measured, DESIGN.md


# How long one launch may train, where it reports and how it compiles: not part of what the run computes, so a run
# stopped by its time budget can be continued (``--resume_from_checkpoint auto``) with another budget, results file or
# compilation.
RUN_CONTROL_FIELDS = ("time_budget_s", "results_json", "regional_compile")  # the last: speed only, same maths


def fingerprint(*parts) -> str:
    fields = [{k: v for k, v in asdict(p).items() if k not in RUN_CONTROL_FIELDS} for p in parts]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_base(model, tok, out: str, seq_len: int) -> None:
    """The un-trained MDM (+ tokenizer with [MASK] and chat template, + sampler defaults) into ``out``."""
    from mdlm.generation_defaults import save_generation_defaults

    staging = os.path.join(out, ".final")
    model.save_pretrained(staging)
    tok.save_pretrained(staging)
    save_generation_defaults(staging, B.generation_defaults(tok, seq_len))
    publish_files(staging, out)
    print(f"base MDM saved to {out}", flush=True)


def save_result(trainer, model, tok, a: AdaptArguments, out: str) -> None:
    staging = os.path.join(out, ".final")
    defaults = B.generation_defaults(tok, a.seq_len)
    if a.lora:
        save_adapter(trainer.model, staging, tokenizer=tok, generation_defaults=defaults)
    else:
        from mdlm.generation_defaults import save_generation_defaults

        trainer.save_model(staging)
        tok.save_pretrained(staging)
        save_generation_defaults(staging, defaults)
    publish_files(staging, out)


def train(argv: list[str] | None = None, callbacks: tuple = ()):
    a, largs, diff, targs = parse_config_and_args((AdaptArguments, LoraArguments, DiffusionArguments, TrainingArguments), argv)
    if a.regional_compile and not targs.torch_compile:
        raise ValueError("--regional_compile true needs --torch_compile true")
    t_start = time.perf_counter()
    set_seed(targs.seed)
    model, tok = B.build_mdm(a)
    sep = B.separator_id(model, tok)
    if a.prepare_data:
        refuse_overwrite(a.prepare_data, False)
        print(f"packed data written to {B.prepare_data(a, tok, sep)}", flush=True)
        return None
    if a.base_only:
        prepare_run(targs, fingerprint(a) + "-base", recipe="adapt_ar")
        save_base(model, tok, targs.output_dir, a.seq_len)
        return None
    resume = prepare_run(targs, fingerprint(a, largs, diff), recipe="adapt_ar")
    train_ds, evals = B.build_datasets(a, tok, sep)
    model.to(targs.device)  # the AR reference runs before the Trainer would move the model (minutes on a CPU)
    ar_nats = B.ar_reference(model, evals, sep, tok.mask_token_id)
    say = print if targs.process_index == 0 else (lambda *_, **__: None)  # one copy of each line under DDP
    for name, nats in ar_nats.items():
        say(f"AR source on {name}: {nats:.4f} nats/token, perplexity {math.exp(nats):.2f}", flush=True)
    if a.lora:
        if a.train_mask_row:
            largs.train_embedding_tokens = ["mask_token"]
        model = apply_lora(model, largs, tok)
    elif a.full_scope == "projections":
        if targs.weight_decay:
            raise ValueError("--full_scope projections needs --weight_decay 0 (decay would move the frozen embedding rows)")
        changeable = B.restrict_to_projections(model, largs.target_modules, [tok.mask_token_id])
    trainable, total = count_parameters(model)
    if not a.lora and a.full_scope == "projections":
        trainable = changeable  # the embedding counts by its one trainable row
    say(f"{type(model.get_base_model() if a.lora else model.lm).__name__}: {total / 1e6:.1f}M parameters, "
        f"{trainable / 1e6:.2f}M trainable | train {len(train_ds)} × {a.seq_len} tokens | alignment "
        f"{a.logit_alignment}", flush=True)
    targs.remove_unused_columns = False
    tokens_per_step = targs.per_device_train_batch_size * targs.gradient_accumulation_steps * a.seq_len
    cbs = list(callbacks)
    if a.time_budget_s > 0:
        cbs.insert(0, TimeBudget(a.time_budget_s, save_checkpoint=targs.save_strategy != "no"))
    if a.attention_anneal_steps > 0:
        from mdlm.adapt.anneal import AttentionAnnealCallback, anneal_ratio

        cbs.append(AttentionAnnealCallback(a.attention_anneal_steps, seed=targs.seed))
        say(f"attention-mask annealing: causal → bidirectional over {a.attention_anneal_steps} steps", flush=True)
        if 0 < targs.max_steps <= a.attention_anneal_steps:
            say(f"warning: --max_steps {targs.max_steps} ends the run while the mask is still annealing (the last "
                f"step opens {anneal_ratio(targs.max_steps - 1, a.attention_anneal_steps):.0%} of it); the saved "
                "model is evaluated and sampled bidirectionally", flush=True)
    bcfg = model.config if not a.lora else model.get_base_model().config
    if getattr(bcfg.backbone_config, "intermediate_size", None):
        from mdlm.training.throughput import ThroughputCallback, flops_per_token

        cbs.append(ThroughputCallback(tokens_per_step, flops_per_token(bcfg.backbone_config, a.seq_len), H200_BF16_PEAK))
    with regional_compilation(a.regional_compile) if targs.torch_compile else nullcontext():
        trainer = B.multi_eval_trainer_class()(
            model=model, args=targs, train_dataset=train_ds, eval_dataset=evals,
            data_collator=MDMCollator(tok.pad_token_id), processing_class=tok, diffusion_args=diff,
            mask_token_id=tok.mask_token_id, callbacks=cbs)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    train_s = time.perf_counter() - t0
    metrics = trainer.evaluate()
    if targs.should_save:
        save_result(trainer, model, tok, a, targs.output_dir)
    steps = trainer.state.global_step
    speeds = [r["tokens_per_s"] for r in steady_intervals(trainer.state.log_history)]
    result = {
        "source": a.source, "gguf_file": a.gguf_file, "logit_alignment": a.logit_alignment, "lora": a.lora,
        "lora_r": largs.r if a.lora else None, "trainable_params": trainable, "total_params": total,
        "steps": steps, "train_tokens": steps * tokens_per_step * targs.world_size, "train_seconds": train_s,
        "tokens_per_s_mean": sum(speeds) / len(speeds) if speeds else None,
        "ar_ppl": {k: math.exp(v) for k, v in ar_nats.items()},
        "final": {k: v for k, v in metrics.items()},
        "ratio_final": {k: math.exp(metrics[f"eval_{k}_nll"] - v) for k, v in ar_nats.items()},
        "curve": B.ratio_curve(trainer.state.log_history + [{"step": steps, **metrics}], ar_nats, tokens_per_step * targs.world_size),
        "log_history": trainer.state.log_history, "wall_seconds": time.perf_counter() - t_start,
    }
    for k, r in result["ratio_final"].items():
        say(f"{k}: ELBO perplexity ≤ {math.exp(metrics[f'eval_{k}_nll']):.2f} vs AR source {math.exp(ar_nats[k]):.2f} "
            f"→ ratio {r:.3f} after {result['train_tokens']:,} tokens", flush=True)
    if a.results_json and targs.process_index == 0:
        B.write_json(a.results_json, result)
    trainer.adapt_result = result
    return trainer


@run_cli
def main() -> int:
    return run_recipe(train)


if __name__ == "__main__":
    main()
