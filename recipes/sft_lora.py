"""LoRA instruction tuning (SFT) of a masked-diffusion LM, LLaDA-style (Nie et al. 2025, Sec. 2.3).

Each example is ``prompt ‖ response ‖ EOS…`` (``mdlm/data/sft.py``): the prompt is never masked and
never scored; response tokens (and the EOS padding after them, ``--pad_policy eos``) are masked with
the forward process and scored, the loss of a row normalised by its response length
(``--normalization sequence``, the default here). Only the LoRA adapter (``mdlm/lora.py``) trains.

Launch:

    # a base model first (a few CPU minutes): python recipes/train_text.py \\
    #     --config recipes/configs/shakespeare_tiny.yaml --output_dir runs/shakespeare_tiny
    # one process (CPU or one GPU), on the WordNet instruction set (define / synonym / sentence)
    python recipes/sft_lora.py --base_model runs/shakespeare_tiny --config recipes/configs/wordnet_lora_tiny.yaml
    # overrides: any --key of the config / LoRA / TrainingArguments
    python recipes/sft_lora.py --base_model runs/shakespeare_tiny --config recipes/configs/wordnet_lora_tiny.yaml \\
        --r 8 --alpha 16 --max_steps 100 --output_dir runs/wordnet_lora_r8
    # your own data: JSONL of {"prompt", "response"} or {"messages": [...]} per line
    python recipes/sft_lora.py --base_model DIR --config recipes/configs/wordnet_lora_tiny.yaml \\
        --data_files train.jsonl --eval_files heldout.jsonl --output_dir runs/my_sft
    # DeepSpeed, N GPUs (ZeRO-2 or ZeRO-3 configs in recipes/deepspeed/)
    deepspeed --num_gpus 2 recipes/sft_lora.py --base_model DIR --config recipes/configs/wordnet_lora_gpu.yaml \\
        --deepspeed recipes/deepspeed/zero2.json
    deepspeed --num_gpus 2 recipes/sft_lora.py --base_model DIR --config recipes/configs/wordnet_lora_gpu.yaml \\
        --deepspeed recipes/deepspeed/zero3.json
    # resume the newest complete checkpoint of --output_dir
    python recipes/sft_lora.py --base_model DIR --config ... --resume_from_checkpoint auto
    # merge the adapter into its base: a plain HF checkpoint (AutoModelForMaskedLM.from_pretrained)
    python recipes/sft_lora.py merge --adapter runs/wordnet_lora_tiny --out runs/wordnet_merged
    # chat with the result (an adapter dir works as --model)
    python recipes/generate.py --model runs/wordnet_lora_tiny --chat --prompt "Define ocean."

Writes ``output_dir/`` as an adapter dir: adapter_config.json (``base_model_name_or_path`` = the base's
absolute path), adapter_model.safetensors, tokenizer files, generation_config.json (chat sampler
defaults), mdlm_base_fingerprint.json (``load_adapter`` refuses another base) and eval_metrics.json.

Evaluation (``eval_nll``) is the response-only ELBO, nats per response token: held-out examples
(WordNet: held-out *words*) encoded as ``prompt ‖ response ‖ EOS`` with nothing after the EOS
(``--eval_pad_policy mask``), only response + EOS scored — LLaDA's conditional likelihood.
``eval/sft_eval.py`` compares base and tuned with the same numbers plus generations.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field

import mdlm  # noqa: F401  (registers the model with the Auto classes)
from mdlm.cli import UserError, parse_config_and_args, run_cli
from mdlm.data.sft import check_response_length
from mdlm.data.sft_sources import build_data, select_eval, wordnet_data  # noqa: F401  (eval/sft_eval.py)
from mdlm.lora import LoraArguments
from mdlm.training import DiffusionArguments, MDMTrainer
from mdlm.training.generation_check import checked_generation_defaults
from mdlm.training.run import run_recipe
from mdlm.training.sft import (  # noqa: F401
    SFTArguments,
    SFTDiffusionArguments,
    SFTTrainer,
    chat_generation_defaults,
    first_prompts,
    print_samples,
    row_prompt,
)


@dataclass
class SFTRunArguments:
    """How long the run may take (a fixed-time GPU slot must still end evaluated and saved)."""

    time_budget_s: float = field(default=0.0, metadata={"help": "stop training after this many seconds (0 = off); "
                                                         "the LR schedule is not stretched"})


def _check_args(sargs: SFTArguments) -> None:
    if not sargs.base_model:
        raise UserError("--base_model DIR is required (a checkpoint of recipes/train_text.py, for example)")
    if not os.path.isdir(sargs.base_model):
        raise UserError(f"--base_model {sargs.base_model!r} is not a directory")
    for f in (sargs.data_files or []) + (sargs.eval_files or []):
        if not os.path.isfile(f):
            raise UserError(f"data file {f!r} does not exist")
    if not 0.0 <= sargs.eval_fraction < 1.0:
        raise UserError(f"--eval_fraction must lie in [0, 1), got {sargs.eval_fraction}")
    try:
        check_response_length(sargs.response_length, sargs.pad_policy)
    except ValueError as e:
        raise UserError(f"--response_length: {e}") from None
    if sargs.response_length is not None and sargs.gen_length > sargs.response_length:
        print(f"warning: --gen_length {sargs.gen_length} (the saved chat defaults) is longer than the trained response "
              f"canvas --response_length {sargs.response_length}; decoding past it can give empty answers", flush=True)


def run_fingerprint(sargs: SFTArguments, largs: LoraArguments, diff: DiffusionArguments) -> str:
    """What makes two runs "the same run" for resuming: base, data, adapter shape and objective."""
    cfg_path = os.path.join(sargs.base_model, "config.json")
    base_cfg = open(cfg_path, encoding="utf-8").read() if os.path.isfile(cfg_path) else ""
    skip_s = {"max_eval_examples", "cache_dir", "num_proc", "gen_length", "gen_block_length", "eval_pad_policy"}
    blob = json.dumps(
        {"base": [os.path.abspath(sargs.base_model), hashlib.sha256(base_cfg.encode()).hexdigest()],
         "sft": {k: v for k, v in asdict(sargs).items() if k not in skip_s},
         "lora": asdict(largs),
         "diffusion": {k: v for k, v in asdict(diff).items() if k not in ("eval_num_samples", "sample_on_end")}},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------- train
def train(argv: list[str] | None = None, callbacks: tuple = ()) -> MDMTrainer:
    """The whole recipe; returns the trainer (tests drive it in-process). Raises on bad input."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, TrainingArguments
    from transformers.integrations import is_deepspeed_zero3_enabled

    from mdlm.lora import apply_lora, count_parameters, set_base_path, write_fingerprint
    from mdlm.training.build import check_model_fits
    from mdlm.training.callbacks import TimeBudget
    from mdlm.training.run import finish_run, prepare_run, train_from

    sargs, largs, diff, targs, rargs = parse_config_and_args(
        (SFTArguments, LoraArguments, SFTDiffusionArguments, TrainingArguments, SFTRunArguments), argv
    )
    if rargs.time_budget_s > 0:
        callbacks = (TimeBudget(rargs.time_budget_s), *callbacks)
    _check_args(sargs)
    base_dir = os.path.abspath(sargs.base_model)
    tok = AutoTokenizer.from_pretrained(base_dir)
    if tok.mask_token_id is None:
        raise UserError(f"the tokenizer of {base_dir} has no [MASK] token")
    # data first: a malformed file or a too-long prompt fails before any model is loaded
    data = build_data(sargs, tok, seed=targs.seed)
    train_ds, eval_ds = data.train, data.heldout
    resume = prepare_run(targs, run_fingerprint(sargs, largs, diff), recipe="sft_lora")

    base = AutoModelForMaskedLM.from_pretrained(base_dir, use_safetensors=True)
    check_model_fits(base, tok, sargs.max_length)
    model = apply_lora(base, largs, tok)
    set_base_path(model, base_dir)
    if targs.should_save:
        write_fingerprint(targs.output_dir, model.mdlm_base_fingerprint)
    n_train, n_total = count_parameters(model)
    if targs.process_index == 0:
        n_eval = len(eval_ds) if eval_ds is not None else 0
        print(
            f"LoRA r={largs.r} alpha={largs.alpha:g} on {', '.join(largs.target_modules)}: "
            f"{n_train / 1e3:.1f}K trainable of {n_total / 1e6:.2f}M parameters ({100 * n_train / n_total:.2f}%) | "
            f"train {len(train_ds)} examples | held-out {n_eval} | normalization {diff.normalization}",
            flush=True,
        )
    targs.remove_unused_columns = False
    targs.label_names = []
    if eval_ds is None and targs.eval_strategy != "no":
        targs.eval_strategy = "no"
    trainer = SFTTrainer(
        model=model,
        args=targs,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=data.collator,
        eval_data_collator=data.eval_collator,
        processing_class=tok,
        diffusion_args=diff,
        mask_token_id=tok.mask_token_id,
        callbacks=list(callbacks),
    )
    train_from(trainer, resume)  # never one step past max_steps when resuming a completed checkpoint
    metrics = trainer.evaluate() if eval_ds is not None else {}
    defaults = chat_generation_defaults(tok, sargs.gen_length, sargs.gen_block_length)
    # ZeRO-3 partitions every weight over the ranks: generating here would need every rank in each forward, so the
    # end-of-run samples and the measured-defaults check are skipped (the adapter is saved gathered; sample it after)
    zero3 = is_deepspeed_zero3_enabled()
    if eval_ds is not None and not zero3:  # a weak model's greedy answer can be EOS at once (an empty answer): measured fallback
        defaults = checked_generation_defaults(trainer.model, tok, defaults, prompts=first_prompts(data.heldout_rows, 3),
                                               seed=targs.seed, world_size=targs.world_size, chat=True, min_distinct_words=1)
    finish_run(trainer, tok, metrics, defaults)
    if targs.should_save:  # the loss / tokens/s / memory records (no checkpoint keeps them with save_strategy "no")
        with open(os.path.join(targs.output_dir, "train_log.json"), "w", encoding="utf-8") as f:
            json.dump(trainer.state.log_history, f, indent=0)
    if diff.sample_on_end and targs.world_size == 1 and eval_ds is not None and not zero3:
        print_samples(trainer.model, tok, defaults, data.heldout_rows, diff.sample_on_end, targs.seed)
    return trainer


# --------------------------------------------------------------------------------------- prepare
def prepare(argv: list[str] | None = None) -> dict:
    """``prepare --out DIR [--counts JSON]``: the instruction mix of mdlm/data/sft_mix.py as JSONL + references."""
    from mdlm.cli import ArgumentParser
    from mdlm.data.sft_mix import (
        DEFAULT_COUNTS,
        build_mix,
        heldout_wordnet_refs,
        mix_counts,
        write_mix,
    )

    p = ArgumentParser(prog="sft_lora.py prepare", description="write the WordNet+GCIDE+wiki+chatterbot instruction mix")
    p.add_argument("--out", required=True, help="new dir (missing or empty) for train/heldout/heldout_eval JSONL")
    p.add_argument("--counts", default=json.dumps(DEFAULT_COUNTS),
                   help=f"JSON source → train rows (null = all); default {json.dumps(DEFAULT_COUNTS)}")
    p.add_argument("--heldout_fraction", type=float, default=0.05, help="share of entries held out (by key)")
    p.add_argument("--wordnet_dir", default=None, help="WordNet 3.0 data.* files (default /usr/share/wordnet)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        counts = json.loads(a.counts)
        assert isinstance(counts, dict)
    except (ValueError, AssertionError):
        raise UserError(f"--counts must be a JSON object such as {json.dumps(DEFAULT_COUNTS)}, got {a.counts!r}") from None
    if os.path.isdir(a.out) and [e for e in os.listdir(a.out) if not e.startswith(".")]:
        raise UserError(f"--out {a.out!r} is not empty; choose another directory")
    mix = build_mix(counts, heldout_fraction=a.heldout_fraction, seed=a.seed)
    refs = heldout_wordnet_refs(mix, *( [a.wordnet_dir] if a.wordnet_dir else []))
    meta = {"counts_requested": counts, "heldout_fraction": a.heldout_fraction, "seed": a.seed,
            "split": "mdlm.data.wordnet.is_held_out(entry key)"}
    paths = write_mix(a.out, mix, refs, meta)
    for split, c in mix_counts(mix).items():
        print(f"{split}: {sum(c.values())} rows {c}", flush=True)
    print(f"wrote {', '.join(paths)} into {a.out}", flush=True)
    return paths


# ----------------------------------------------------------------------------------------- merge
def merge(argv: list[str] | None = None) -> str:
    """``merge --adapter DIR --out DIR [--base DIR] [--dtype float32|bfloat16|float16]``."""
    import torch

    from mdlm.cli import ArgumentParser
    from mdlm.lora import merge_adapter

    p = ArgumentParser(prog="sft_lora.py merge", description="merge a LoRA adapter into its base")
    p.add_argument("--adapter", required=True, help="adapter dir written by this recipe")
    p.add_argument("--out", required=True, help="new checkpoint dir (must be missing or empty)")
    p.add_argument("--base", help="base dir (default: adapter_config.json's base_model_name_or_path)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    a = p.parse_args(argv)
    if not os.path.isdir(a.adapter):
        raise UserError(f"--adapter {a.adapter!r} is not a directory")
    out = merge_adapter(a.adapter, a.out, base_dir=a.base, dtype=getattr(torch, a.dtype) if a.dtype else None)
    print(f"merged {a.adapter} into its base: {out}", flush=True)
    return out


@run_cli
def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "merge":
        merge(argv[1:])
        return 0
    if argv and argv[0] == "prepare":
        prepare(argv[1:])
        return 0
    return run_recipe(train, argv)


if __name__ == "__main__":
    main()
