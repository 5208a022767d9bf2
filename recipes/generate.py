"""Generate text or images from a masked-diffusion checkpoint with the one sampler.

    # text: prompts (repeatable) or a file with one prompt per line; "" = unconditional
    python recipes/generate.py --model runs/shakespeare_tiny --prompt "ROMEO:" --prompt "To be, or not"
    python recipes/generate.py --model runs/shakespeare_tiny --prompt-file prompts.txt --steps 32 \\
        --block-length 32 --temperature 0.7 --confidence margin --seed 1
    # many samples: batches of --batch-size rows, streamed to a JSONL file as each batch finishes
    python recipes/generate.py --model runs/shakespeare_tiny --num-samples 1000 --batch-size 32 --out samples.jsonl
    # LLaDA's reference generate() exactly: even split, greedy low-confidence, blocks, no EOS policy, pad allowed
    python recipes/generate.py --model DIR --prompt "..." --schedule even --unmasking confidence --confidence prob \\
        --temperature 0 --block-length 32 --no_stop_at_eos --no_suppress_pad
    # Fast-dLLM's threshold rule (top-1 plus every position ≥ 0.9), steps only a cap
    python recipes/generate.py --model DIR --prompt "..." --unmasking fast_dllm --threshold 0.9 --temperature 0
    # fastest greedy decoding on a GPU: dual KV cache + each step replayed as one CUDA graph
    python recipes/generate.py --model DIR --prompt "..." --temperature 0 --block-length 32 \\
        --cache-implementation dual --cuda-graphs
    # a LoRA adapter dir works as --model (its base is read from adapter_config.json), or --adapter
    python recipes/generate.py --model runs/wordnet_lora_tiny --chat --prompt "Define ocean."
    # images: class-conditional grid with guidance in an interval (relative paths go under --output-dir,
    # default MODEL/samples; an existing file is kept unless --overwrite)
    python recipes/generate.py --model runs/fmnist_mdm_tiny --class-id 3 --num-samples 16 --out grid.png \\
        --steps 16 --guidance-scale 2 --guidance-interval 0 0.8 --save-steps strip.png
    # text-image checkpoints (train_image.py --captions): one row per prompt, optionally with a class by name
    python recipes/generate.py --model runs/emoji_t2i --prompt "red apple" --prompt "cat face" --num-samples 8 \\
        --out apples.png --steps 8 --cfg-scale 2 --cfg-interval 0.5 1 --save-steps
    python recipes/generate.py --model runs/emoji_t2i --class "Food & Drink" --prompt "apple" --out food.png

Sampler defaults come from the checkpoint's generation_config.json; every sampler flag (the fields of
mdlm.sampling.MDLMGenerationConfig, see --help) overrides them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli
from mdlm.pipelines import generate_text_batches, load_for_generation
from mdlm.sampling import MDLMGenerationConfig, add_generation_arguments, given_settings


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--model", required=True, help="checkpoint dir, or a LoRA adapter dir")
    p.add_argument("--adapter", help="LoRA adapter dir to apply on top of --model")
    p.add_argument("--prompt", action="append", help="a prompt (repeatable); '' = unconditional")
    p.add_argument("--prompt-file", help="one prompt per line")
    p.add_argument("--num-samples", type=int, default=None, help="samples per prompt / class (default 1 text, 16 images)")
    p.add_argument("--batch-size", type=int, default=None, help="rows per sampler call (default 16 text, all images)")
    p.add_argument("--class-id", action="append", metavar="N|all",
                   help="image class (repeatable; 'all' = one row per class); omit for unconditional")
    p.add_argument("--class", dest="class_name", action="append", metavar="NAME",
                   help="image class by name (repeatable); text-image models pair classes with --prompt captions")
    p.add_argument("--out", help="text: JSONL file (one row per sample, streamed); images: the grid PNG")
    p.add_argument("--output-dir", help="where relative --out / --save-steps / --samples-npz paths go "
                                        "(default: MODEL/samples; never the current directory)")
    p.add_argument("--save-steps", nargs="?", const=True, default=None, metavar="STRIP.png",
                   help="images: also write a strip of the canvas over the steps (default OUT_steps.png)")
    p.add_argument("--samples-npz", help="images: also write the samples (+ requested labels) as .npz for eval/fid.py")
    p.add_argument("--overwrite", "--force", dest="force", action="store_true", help="replace existing output files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    g = p.add_argument_group("sampler (defaults: the checkpoint's generation_config.json)")
    names = add_generation_arguments(g)
    a = p.parse_args(argv)
    a.settings = given_settings(a, names)
    for flag in ("num_samples", "batch_size"):
        if getattr(a, flag) is not None and getattr(a, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be ≥ 1, got {getattr(a, flag)}")
    return a


def generation_config(a: argparse.Namespace, loaded, **extra) -> MDLMGenerationConfig:
    """The checkpoint's generation_config.json with the given flags on top."""
    return MDLMGenerationConfig.from_dict({**loaded.defaults, **a.settings, **extra})


def output_path(a: argparse.Namespace, path: str) -> str:
    """``path`` itself if absolute, else under --output-dir (default MODEL/samples, created); refused if it
    exists and --overwrite is not given."""
    if not os.path.isabs(path):
        base = a.output_dir or os.path.join(a.model, "samples")
        os.makedirs(base, exist_ok=True)
        path = os.path.join(base, path)
    elif not os.path.isdir(os.path.dirname(path)):
        raise UserError(f"the directory of {path!r} does not exist")
    refuse_overwrite(path, a.force)
    return path


def progress(desc: str, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=None, desc=desc, unit=unit, leave=False, disable=not sys.stderr.isatty())


def run_text(a: argparse.Namespace, loaded) -> None:
    if a.class_id or a.class_name or a.save_steps or a.samples_npz:
        raise UserError(f"{a.model} is a text checkpoint; --class-id/--class/--save-steps/--samples-npz are for images")
    if loaded.tokenizer is None:
        raise UserError(f"{a.model} has no tokenizer files; it is not a text checkpoint")
    prompts = list(a.prompt or [])
    if a.prompt_file:
        with open(a.prompt_file, encoding="utf-8") as f:
            prompts += [line.rstrip("\n") for line in f if line.strip()]
    prompts = [p for p in (prompts or [""]) for _ in range(a.num_samples or 1)]
    config = generation_config(a, loaded)
    path = output_path(a, a.out) if a.out else None
    tmp = f"{path}.partial" if path else None
    sink = open(tmp, "w", encoding="utf-8") if tmp else None
    bar = progress("samples", "sample")
    bar.total = len(prompts)
    t0, nfe = time.perf_counter(), 0
    try:
        for batch, texts, out in generate_text_batches(loaded.model, loaded.tokenizer, prompts, config,
                                                       a.batch_size or 16, seed=a.seed):
            nfe = max(nfe, out.nfe)
            for p, t in zip(batch, texts):
                if sink is not None:
                    sink.write(json.dumps({"prompt": p, "text": t}, ensure_ascii=False) + "\n")
                else:
                    print(f"=== {p!r}" if p else "=== (unconditional)")
                    print(t)
            if sink is not None:
                sink.flush()  # a finished batch is on disk (in OUT.partial until the last one)
            bar.update(len(batch))
    finally:
        bar.close()
        if sink is not None:
            sink.close()
    if path:
        os.replace(tmp, path)
        print(f"wrote {path} ({len(prompts)} samples)")
    dt = time.perf_counter() - t0
    n_tok = len(prompts) * config.max_new_tokens
    first = " (the first generation compiles: eval/decode_bench.py times compiled rows without it)" \
        if config.torch_compile else ""
    print(f"[{len(prompts)} × {config.max_new_tokens} tokens, {nfe} NFE, {dt:.2f}s, {n_tok / dt:.1f} tokens/s{first}]",
          file=sys.stderr)


def image_paths(a: argparse.Namespace) -> dict[str, str]:
    paths: dict[str, str] = {}
    if a.out:
        paths["grid"] = a.out
    if a.save_steps:
        if a.save_steps is True:
            if not a.out:
                raise UserError("--save-steps without a path needs --out (it writes OUT_steps.png)")
            root, ext = os.path.splitext(a.out)
            paths["strip"] = f"{root}_steps{ext or '.png'}"
        else:
            paths["strip"] = a.save_steps
    if a.samples_npz:
        if not a.samples_npz.endswith(".npz"):
            raise UserError(f"--samples-npz must end with .npz, got {a.samples_npz!r}")
        paths["npz"] = a.samples_npz
    if not paths:
        raise UserError("an image checkpoint writes files: give --out grid.png (and/or --save-steps, --samples-npz)")
    return {k: output_path(a, p) for k, p in paths.items()}


def image_conditions(a: argparse.Namespace, loaded, info, n: int):
    """The condition rows of an image run: --class-id / --class (names) and, for a text-image checkpoint,
    --prompt / --prompt-file captions (mdlm.pipelines.text_image.condition_rows)."""
    from mdlm.data.text_image import TextImageLayout
    from mdlm.pipelines import image as img
    from mdlm.pipelines.text_image import (
        condition_rows,
        load_caption_tokenizer,
        resolve_classes,
    )

    class_ids = img.parse_class_ids(a.class_id, info.layout.num_classes) or []
    class_ids += resolve_classes(a.class_name or [], info.class_names)
    prompts = list(a.prompt or [])
    if a.prompt_file:
        with open(a.prompt_file, encoding="utf-8") as f:
            prompts += [line.rstrip("\n") for line in f if line.strip()]
    if prompts and not isinstance(info.layout, TextImageLayout):
        raise UserError(f"{a.model} is a class-conditional image checkpoint (no captions); --prompt needs one "
                        "trained with --captions. Use --class / --class-id")
    tok = load_caption_tokenizer(loaded.base_dir or loaded.model_dir, info) if prompts else None
    return condition_rows(info, tok, prompts, class_ids, n)


def run_images(a: argparse.Namespace, loaded) -> None:
    """A PNG grid (one row per requested class / prompt), an optional strip of the canvas over the steps, an
    optional samples .npz."""
    from mdlm.data.images import save_samples_npz
    from mdlm.pipelines import image as img

    info = img.image_model_info(loaded.model.config)
    n = a.num_samples or 16
    rows = image_conditions(a, loaded, info, n)
    conditional = rows.row_names != ["unconditional"]
    paths = image_paths(a)
    device = next(loaded.model.parameters()).device
    vq = img.load_image_vq(loaded.base_dir or loaded.model_dir, info, device=device)
    config = generation_config(a, loaded, return_history="strip" in paths)
    bar = progress("sampling", "step")

    def cb(step, canvas, step_info):
        bar.total = step_info.max_steps
        bar.update(1)

    t0 = time.perf_counter()
    out = img.generate_conditioned(loaded.model, info.layout, vq, rows.labels, rows.captions, config,
                                   torch.Generator(device=device).manual_seed(a.seed), batch_size=a.batch_size,
                                   callback=cb)
    bar.close()
    dt = time.perf_counter() - t0
    names = rows.row_names
    what = ", ".join(names) if len(names) <= 3 else f"{len(names)} {'prompts' if a.prompt or a.prompt_file else 'classes'}"
    cfg_txt = f", CFG {config.guidance_scale:g}" if config.guidance_scale > 0 else ""
    lo, hi = config.guidance_interval
    if cfg_txt and (lo, hi) != (0.0, 1.0):
        cfg_txt += f" for τ ∈ ({lo:g}, {hi:g}]"
    if "grid" in paths:
        img.save_labeled_grid(out.images, paths["grid"], nrow=n if conditional else min(n, 8),
                              row_labels=names if conditional else None, title=f"{what} | {config.steps} steps{cfg_txt}")
    if "strip" in paths:
        strip_rows = (torch.arange(len(names)) * n)[:10] if conditional else torch.arange(min(n, 8))
        img.save_steps_strip(vq, info.layout, out.history, strip_rows, paths["strip"],
                             row_labels=names[:10] if conditional else None)
    if "npz" in paths:
        save_samples_npz(paths["npz"], out.images, out.labels if bool((out.labels >= 0).all()) else None,
                         captions=rows.prompts)  # the prompts let eval/fid.py --captions-from score caption match
    for kind, p in paths.items():
        print(f"wrote {p} ({kind})")
    print(f"[{len(out.labels)} images ({what}), {config.steps} steps, {out.nfe} NFE{cfg_txt}, {dt:.2f}s]",
          file=sys.stderr)


@run_cli
def main() -> int:
    a = parse_args()
    dtype = getattr(torch, a.dtype) if a.dtype else None
    loaded = load_for_generation(a.model, a.adapter, device=a.device, dtype=dtype)
    if getattr(loaded.model.config, "image_layout", None):
        run_images(a, loaded)
    else:
        run_text(a, loaded)
    return 0


if __name__ == "__main__":
    main()
