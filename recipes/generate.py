"""Generate text or images from a masked-diffusion checkpoint with the one confidence sampler.

    # text: prompts (repeatable) or a file with one prompt per line; "" = unconditional
    python recipes/generate.py --model runs/shakespeare_tiny --prompt "ROMEO:" --prompt "To be, or not"
    python recipes/generate.py --model runs/shakespeare_tiny --prompt-file prompts.txt --steps 32 \\
        --block-length 32 --temperature 0.7 --confidence margin --seed 1
    # LLaDA's reference decoding: even split, low-confidence remasking, greedy, blocks of 32
    python recipes/generate.py --model DIR --prompt "..." --schedule even --remasking low_confidence \\
        --temperature 0 --block-length 32
    # Fast-dLLM-style parallel decoding: commit every token above a confidence threshold
    python recipes/generate.py --model DIR --prompt "..." --threshold 0.9
    # fastest greedy decoding on a GPU: dual KV cache + each step replayed as one CUDA graph
    python recipes/generate.py --model DIR --prompt "..." --temperature 0 --remasking low_confidence \
        --block-length 32 --cache dual --cuda-graphs
    # a LoRA adapter dir works as --model (its base is read from adapter_config.json), or --adapter
    python recipes/generate.py --model runs/wordnet_lora --chat --prompt "Define ocean"
    # images: class-conditional grid with classifier-free guidance in an interval
    python recipes/generate.py --model runs/fmnist_mdm_tiny --class-id 3 --num-samples 16 --out grid.png \\
        --steps 16 --cfg-scale 2 --cfg-interval 0 0.8 --save-steps strip.png
    python recipes/generate.py --model runs/fmnist_mdm_tiny --class-id all --num-samples 8 --out grid.png \\
        --samples-npz samples.npz          # one row per class; --force replaces existing files

Sampler defaults come from the checkpoint's generation_config.json; every flag overrides them.
"""

from __future__ import annotations

import argparse
import sys
import time


import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import UserError, run_cli  # noqa: E402
from mdlm.pipelines import generate_text, load_for_generation  # noqa: E402
from mdlm.pipelines.text import sampler_config_from  # noqa: E402
from mdlm.sampling import CONFIDENCES, REMASKING, SAMPLERS  # noqa: E402
from mdlm.modeling.kv_cache import CACHE_MODES  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint dir, or a LoRA adapter dir")
    p.add_argument("--adapter", help="LoRA adapter dir to apply on top of --model")
    p.add_argument("--prompt", action="append", help="a prompt (repeatable); '' = unconditional")
    p.add_argument("--prompt-file", help="one prompt per line")
    p.add_argument("--chat", action="store_true", help="wrap prompts in the chat template (instruction-tuned models)")
    p.add_argument("--num-samples", type=int, default=None, help="samples per prompt / class (default 1 text, 16 images)")
    p.add_argument("--class-id", action="append", metavar="N|all",
                   help="image class (repeatable; 'all' = one row per class); omit for unconditional")
    p.add_argument("--out", help="image grid PNG path")
    p.add_argument("--save-steps", nargs="?", const=True, default=None, metavar="STRIP.png",
                   help="also write a strip of the canvas over the steps (default path OUT_steps.png)")
    p.add_argument("--samples-npz", help="images: also write the samples (+ requested labels) as .npz for eval/fid.py")
    p.add_argument("--batch-size", type=int, default=None, help="images: rows per sampler call (default: all)")
    p.add_argument("--force", "--overwrite", action="store_true", help="overwrite existing output files")
    g = p.add_argument_group("sampler (defaults: the checkpoint's generation_config.json)")
    g.add_argument("--steps", type=int)
    g.add_argument("--gen-length", type=int)
    g.add_argument("--block-length", type=int)
    g.add_argument("--schedule", help="even (LLaDA), linear, cosine, exp, log-exp, arccos, poly<p>")
    g.add_argument("--temperature", type=float)
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    g.add_argument("--sampler", choices=SAMPLERS)
    g.add_argument("--confidence", choices=CONFIDENCES)
    g.add_argument("--remasking", choices=REMASKING)
    g.add_argument("--choice-temperature", type=float)
    g.add_argument("--constant-choice-noise", dest="choice_anneal", action="store_false", default=None,
                   help="maskgit sampler: keep the choice noise at --choice-temperature over the steps (no annealing)")
    g.add_argument("--hybrid", type=float, help="moment sampler: share of positions chosen greedily")
    g.add_argument("--threshold", type=float, help="confidence-threshold parallel decoding")
    g.add_argument("--remask-committed", type=float, help="ReMDM-style re-masking of committed tokens (share)")
    g.add_argument("--cfg-scale", type=float)
    g.add_argument("--cfg-interval", type=float, nargs=2, metavar=("LO", "HI"))
    g.add_argument("--cache", choices=CACHE_MODES, help="block KV cache (Fast-dLLM dual / prefix; needs --block-length)")
    g.add_argument("--cuda-graphs", action="store_true", default=None,
                   help="replay each greedy step as one CUDA graph (GPU; needs --temperature 0 --remasking low_confidence)")
    g.add_argument("--substeps", type=int, help="moment sampler: draw each step's chosen tokens in this many groups")
    g.add_argument("--partial-cache", action="store_true", default=None,
                   help="with --substeps: later groups recompute only the chosen columns (Hayakawa et al. partial caching)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    a = p.parse_args(argv)
    if a.num_samples is not None and a.num_samples < 1:
        raise UserError(f"--num-samples must be ≥ 1, got {a.num_samples}")
    if a.batch_size is not None and a.batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {a.batch_size}")
    return a


def sampler_overrides(a: argparse.Namespace) -> dict:
    keys = ["steps", "gen_length", "block_length", "schedule", "temperature", "top_k", "top_p", "sampler",
            "confidence", "remasking", "choice_temperature", "choice_anneal", "hybrid", "threshold", "remask_committed",
            "cfg_scale", "cfg_interval", "cache", "cuda_graphs", "substeps", "partial_cache"]
    return {k: getattr(a, k) for k in keys}


def run_text(a: argparse.Namespace, loaded) -> None:
    prompts = list(a.prompt or [])
    if a.prompt_file:
        with open(a.prompt_file, encoding="utf-8") as f:
            prompts += [line.rstrip("\n") for line in f if line.strip()]
    if not prompts:
        prompts = [""]
    prompts = [p for p in prompts for _ in range(a.num_samples or 1)]
    if loaded.tokenizer is None:
        raise UserError(f"{a.model} has no tokenizer files; it is not a text checkpoint")
    config, gen_length = sampler_config_from(loaded.defaults, sampler_overrides(a))
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc="sampling", unit="step", leave=False, disable=not sys.stderr.isatty())

    def cb(step, canvas, info):
        bar.total = info.max_steps
        bar.update(1)

    t0 = time.perf_counter()
    texts, out = generate_text(loaded.model, loaded.tokenizer, prompts, config, gen_length, seed=a.seed,
                               chat=a.chat, callback=cb)
    bar.close()
    dt = time.perf_counter() - t0
    for p, t in zip(prompts, texts):
        print(f"=== {p!r}" if p else "=== (unconditional)")
        print(t)
    n_tok = len(prompts) * gen_length
    print(f"[{len(prompts)} × {gen_length} tokens, {out.nfe} NFE, {dt:.2f}s, {n_tok / dt:.1f} tokens/s]", file=sys.stderr)


@run_cli
def main() -> int:
    a = parse_args()
    dtype = getattr(torch, a.dtype) if a.dtype else None
    loaded = load_for_generation(a.model, a.adapter, device=a.device, dtype=dtype)
    if getattr(loaded.model.config, "image_layout", None):
        from mdlm.pipelines.image import run_image_cli

        run_image_cli(a, loaded)
    else:
        if a.class_id or a.out or a.save_steps or a.samples_npz:
            raise UserError(f"{a.model} is a text checkpoint; --class-id/--out/--save-steps/--samples-npz are for image checkpoints")
        run_text(a, loaded)
    return 0


if __name__ == "__main__":
    main()
