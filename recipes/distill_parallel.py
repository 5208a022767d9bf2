"""Certainty-forcing distillation (dParallel, Chen et al. 2025): make a masked-diffusion LM confident on its own
greedy decodes, so that parallel commits (Fast-dLLM threshold, EB-sampler) fire. ``mdlm/certainty_forcing/``.

Two stages, each its own command:

    # 1. teacher: the model's own greedy semi-AR decodes (one token per step) of paragraph openings of a training split
    #    (a CPU smoke run on the quickstart model, whose greedy decodes are newlines: the recipe warns, and the distilled
    #    model is a fast newline printer; distil a model whose greedy text is text, e.g. the 125M GPU one)
    python recipes/distill_parallel.py teacher --model runs/shakespeare_tiny --dataset shakespeare \\
        --num_prompts 64 --gen_length 64 --block_length 32 --out runs/traj_tiny
    # on a GPU: the dual K/V cache and CUDA graphs make it ~5x faster (trajectories under the cache)
    python recipes/distill_parallel.py teacher --model runs/decode/mdm --dataset .data/shakespeare_bible \\
        --num_prompts 2048 --gen_length 1024 --batch_size 256 --cache dual --cuda_graphs --out runs/traj
    # 2. train: fine-tune the same model on its trajectories (any --key of the config / TrainingArguments)
    python recipes/distill_parallel.py train --config recipes/configs/distill_parallel_tiny.yaml \\
        --base_model runs/shakespeare_tiny --trajectories runs/traj_tiny --output_dir runs/distilled_tiny
    # DeepSpeed / torchrun, N GPUs
    deepspeed --num_gpus 2 recipes/distill_parallel.py train --config recipes/configs/distill_parallel_125m.yaml \\
        --base_model runs/decode/mdm --trajectories runs/traj --output_dir runs/distilled
    # then decode (its saved defaults: greedy, Fast-dLLM threshold 0.9, the training block) or benchmark it:
    python recipes/generate.py --model runs/distilled_tiny --prompt "ROMEO:"
    python eval/decode_bench.py --model runs/distilled --out runs/bench_distilled --rows graphs threshold eb

``teacher`` writes a ``datasets`` dir (``prompt``, ``prompt_ids``, ``response_ids``) plus ``teacher.json`` (model,
settings, tokens/s, the share of degenerate trajectories). ``train`` holds out the last ``--eval_rows`` trajectories
and writes an HF checkpoint like the base's (loadable with ``from_pretrained``), whose generation_config.json is the
base's with greedy threshold decoding (temperature 0, confidence = p, Fast-dLLM threshold 0.9, the training block),
and ``eval_metrics.json``: held-out cross-entropy, accuracy, entropy and the share of positions a 0.9 threshold commits
correctly, before (``before_*``) and after (``eval_*``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import time

import mdlm  # noqa: F401  (registers the model with the Auto classes)
from mdlm.cli import ArgumentParser, UserError, parse_config_and_args, refuse_overwrite, run_cli

TEACHER_META = "teacher.json"


# --------------------------------------------------------------------------------------------- teacher
def teacher_args(argv):
    p = ArgumentParser(prog="distill_parallel.py teacher", description="the model's own greedy decodes of prompts")
    p.add_argument("--model", required=True, help="MDM checkpoint dir")
    p.add_argument("--dataset", default="shakespeare+bible", help="text corpus (mdlm/data/text.py names or a dir)")
    p.add_argument("--split", default="train", help="split whose paragraph openings are the prompts")
    p.add_argument("--num_prompts", type=int, default=2048, help="prompts to decode (a seeded random subset)")
    p.add_argument("--max_chars", type=int, default=64, help="longest prompt line (characters, cut at a word)")
    p.add_argument("--gen_length", type=int, default=1024, help="tokens decoded per prompt")
    p.add_argument("--block_length", type=int, default=32, help="semi-AR block (the decoder's)")
    p.add_argument("--batch_size", type=int, default=64, help="prompts decoded together")
    p.add_argument("--cache", choices=("none", "dual"), default="none", help="dual: Fast-dLLM's approximate K/V cache")
    p.add_argument("--cuda_graphs", action="store_true", help="replay each step as a CUDA graph (GPU)")
    p.add_argument("--torch_compile", action="store_true",
                   help="the forward and the sampler's step through torch.compile (fused kernels; the first batch "
                        "pays the compilation: ~2 min for the 125M MDM at batch 256 on an H200, where the steady speed "
                        "was no better — worth it only for long runs at small batches)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default=None, help="default: bf16 on cuda, fp32 on cpu")
    p.add_argument("--seed", type=int, default=0, help="which prompts (the subset's shuffle)")
    p.add_argument("--max_seconds", type=float, default=None,
                   help="stop after the batch that passes this many seconds of decoding (keeps what is done)")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    for k in ("num_prompts", "gen_length", "block_length", "batch_size"):
        if getattr(a, k) < 1:
            raise UserError(f"--{k} must be >= 1, got {getattr(a, k)}")
    if a.gen_length % a.block_length:
        raise UserError(f"--gen_length {a.gen_length} must be a multiple of --block_length {a.block_length}")
    return a


def teacher(argv) -> dict:
    import torch

    from mdlm.certainty_forcing.prompts import paragraph_openings
    from mdlm.certainty_forcing.teacher import degenerate_share, teacher_config, teacher_trajectories
    from mdlm.data.text import load_text_corpus
    from mdlm.pipelines import load_for_generation

    a = teacher_args(argv)
    refuse_overwrite(a.out, a.overwrite)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype or ("bf16" if device.startswith("cuda") else "fp32")]
    dd = load_text_corpus(a.dataset)
    if a.split not in dd:
        raise UserError(f"--split {a.split!r}: {a.dataset} has {', '.join(dd)}")
    prompts = paragraph_openings(dd[a.split]["text"], max_chars=a.max_chars)
    if len(prompts) < a.num_prompts:
        raise UserError(f"--num_prompts {a.num_prompts}: the {a.split} split of {a.dataset} has {len(prompts)} "
                        "paragraph openings")
    prompts = random.Random(a.seed).sample(prompts, a.num_prompts)
    loaded = load_for_generation(a.model, device=device, dtype=dtype)
    model, tok = loaded.model, loaded.tokenizer
    if tok is None or tok.mask_token_id is None:
        raise UserError(f"{a.model} has no tokenizer with a [MASK] token")
    config = teacher_config(a.gen_length, a.block_length, a.cache, a.cuda_graphs and device.startswith("cuda"),
                            a.torch_compile)
    t0 = time.perf_counter()
    rows = []
    for row in teacher_trajectories(model, tok, prompts, config, batch_size=a.batch_size):
        rows.append(row)
        if a.max_seconds and len(rows) % a.batch_size == 0 and time.perf_counter() - t0 > a.max_seconds:
            print(f"--max_seconds {a.max_seconds:g}: stopping after {len(rows)} of {len(prompts)} prompts", flush=True)
            break
    seconds = time.perf_counter() - t0
    degenerate = degenerate_share([r["response_ids"] for r in rows])
    if degenerate >= 0.5:
        print(f"warning: {degenerate:.0%} of the trajectories are one or two tokens repeated: {a.model}'s greedy "
              "decoding is degenerate, and distilling it makes a fast model of that (train the model longer)",
              file=sys.stderr, flush=True)
    meta = {"model": os.path.abspath(a.model), "dataset": a.dataset, "split": a.split, "rows": len(rows),
            "prompts_asked": a.num_prompts, "gen_length": a.gen_length, "block_length": a.block_length,
            "cache": a.cache, "cuda_graphs": config.cuda_graphs, "torch_compile": a.torch_compile,
            "batch_size": a.batch_size, "seed": a.seed,
            "seconds": round(seconds, 1), "tokens_per_s": round(len(rows) * a.gen_length / seconds, 1),
            "degenerate_share": round(degenerate, 4), "device": device, "dtype": str(dtype),
            "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d")}
    write_trajectories(rows, meta, a.out)
    print(f"wrote {a.out}: {len(rows)} trajectories of {a.gen_length} tokens in {seconds:.0f} s "
          f"({meta['tokens_per_s']:,.0f} tokens/s)", flush=True)
    return meta


def write_trajectories(rows: list[dict], meta: dict, out: str) -> None:
    """Save ``rows`` (a ``datasets`` dir) + ``teacher.json`` into a fresh staging dir beside ``out``, then swap it in:
    an existing ``out`` (``--overwrite``) is replaced only once the new one is complete."""
    from datasets import Dataset

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".distill_teacher_")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # a plain dir, not mkdtemp's private 0700
    try:
        Dataset.from_list(rows).save_to_disk(staging)
        with open(os.path.join(staging, TEACHER_META), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after the swap


# ----------------------------------------------------------------------------------------------- train
def read_trajectories(path: str):
    """(datasets.Dataset, teacher meta) of a ``teacher`` output dir; one UserError line if it is not one."""
    from datasets import load_from_disk

    meta_path = os.path.join(path or "", TEACHER_META)
    if not path or not os.path.isfile(meta_path):
        raise UserError(f"--trajectories {path!r} is not a dir written by `distill_parallel.py teacher` "
                        f"(no {TEACHER_META})")
    with open(meta_path, encoding="utf-8") as f:
        return load_from_disk(path), json.load(f)


def train(argv=None):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, TrainingArguments, set_seed

    from mdlm.certainty_forcing.args import DistillArguments
    from mdlm.certainty_forcing.collator import TrajectoryCollator
    from mdlm.certainty_forcing.teacher import student_generation_defaults
    from mdlm.certainty_forcing.trainer import CertaintyForcingTrainer
    from mdlm.generation_defaults import load_generation_defaults
    from mdlm.training.run import finish_run, prepare_run, train_from

    dargs, targs = parse_config_and_args((DistillArguments, TrainingArguments), argv)
    for flag in ("base_model", "trajectories"):
        if not getattr(dargs, flag):
            raise UserError(f"--{flag} is required")
    if not os.path.isfile(os.path.join(dargs.base_model, "config.json")):
        raise UserError(f"--base_model {dargs.base_model!r} is not a checkpoint dir (no config.json)")
    data, meta = read_trajectories(dargs.trajectories)
    dargs.block_length = dargs.block_length or meta["block_length"]
    if meta["gen_length"] % dargs.block_length:
        raise UserError(f"--block_length {dargs.block_length} does not divide the trajectories' {meta['gen_length']} "
                        "tokens (the decoder's blocks would not be the ones trained)")
    if not 0 < dargs.eval_rows < len(data):
        raise UserError(f"--eval_rows {dargs.eval_rows} must be between 1 and the trajectories' {len(data)} - 1")
    if targs.process_index == 0:
        if os.path.realpath(dargs.base_model) != os.path.realpath(meta["model"]):
            print(f"warning: --base_model {dargs.base_model} is not the model the trajectories were decoded by "
                  f"({meta['model']}): certainty forcing distils a model on its own decodes", file=sys.stderr)
        if meta.get("degenerate_share", 0) >= 0.5:
            print(f"warning: {meta['degenerate_share']:.0%} of the trajectories are one or two tokens repeated (a "
                  "degenerate teacher): the distilled model will decode that, fast", file=sys.stderr)
    fingerprint = json.dumps({"base": os.path.abspath(dargs.base_model), "traj": os.path.abspath(dargs.trajectories),
                              **{k: v for k, v in vars(dargs).items() if k not in ("base_model", "trajectories")}},
                             sort_keys=True)
    resume = prepare_run(targs, fingerprint, recipe="distill_parallel")
    set_seed(targs.seed)
    tok = AutoTokenizer.from_pretrained(dargs.base_model)
    model = AutoModelForMaskedLM.from_pretrained(dargs.base_model, use_safetensors=True).float()
    split = len(data) - dargs.eval_rows
    train_ds, eval_ds = data.select(range(split)), data.select(range(split, len(data)))
    targs.remove_unused_columns = False
    trainer = CertaintyForcingTrainer(model=model, args=targs, train_dataset=train_ds, eval_dataset=eval_ds,
                                      data_collator=TrajectoryCollator(tok.pad_token_id), processing_class=tok,
                                      distill_args=dargs, mask_token_id=tok.mask_token_id)
    before = trainer.evaluate(metric_key_prefix="before")
    train_from(trainer, resume)
    metrics = before | trainer.evaluate()  # (both dicts carry the logged epoch: the final one wins)
    model.config.certainty_forcing = {"teacher": meta, **vars(dargs)}
    defaults = student_generation_defaults(load_generation_defaults(dargs.base_model), dargs.block_length)
    finish_run(trainer, tok, metrics, defaults)
    if targs.process_index == 0:
        print(f"held-out positions a {dargs.confident_threshold} threshold commits correctly: "
              f"{before['before_confident_correct']:.1%} -> {metrics['eval_confident_correct']:.1%} | accuracy "
              f"{before['before_accuracy']:.1%} -> {metrics['eval_accuracy']:.1%} | saved to {targs.output_dir}",
              flush=True)
    return trainer


@run_cli
def main() -> int:
    # the deepspeed launcher puts --local_rank=N before the script's own arguments: keep it for TrainingArguments
    rank = [x for x in sys.argv[1:] if x.startswith("--local_rank=")]
    argv = [x for x in sys.argv[1:] if not x.startswith("--local_rank=")]
    if argv[:1] in ([], ["-h"], ["--help"]):  # no stage named: the launch commands of both
        print(__doc__)
        print("Each stage's options: distill_parallel.py teacher --help, distill_parallel.py train --help")
        return 0
    if argv[0] not in ("teacher", "train"):
        raise UserError(f"unknown stage {argv[0]!r}: usage: distill_parallel.py {{teacher,train}} ... "
                        "(distill_parallel.py --help)")
    if argv[0] == "teacher":
        teacher(argv[1:])
    else:
        from mdlm.training.run import run_recipe

        return run_recipe(train, argv[1:] + rank)
    return 0


if __name__ == "__main__":
    main()
