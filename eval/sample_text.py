"""Write text samples of a checkpoint (or reference chunks of real text) as JSONL for eval/genppl.py.

    python eval/sample_text.py --model runs/base_tiny --num-samples 16 --gen-length 64 --out s.jsonl \\
        --steps 64 --temperature 1 --remasking random            # any sampler flag of recipes/generate.py
    python eval/sample_text.py --model runs/base_tiny --reference shakespeare --num-samples 16 --gen-length 64 \\
        --out ref.jsonl                                           # validation text cut to 64 model tokens

Each line: ``{"text", "prompt"?, "ids"}`` (``ids``: the generated model tokens). Sampler defaults come from
the checkpoint's generation_config.json; the flags override them. Unconditional unless ``--prompt``.
An existing ``--out`` is refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import time

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.text_samples import reference_texts, sample_texts, write_samples
from mdlm.pipelines import load_for_generation
from mdlm.pipelines.text import sampler_config_from
from mdlm.sampling import add_generation_arguments, given_settings

@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, help="JSONL to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--num-samples", type=positive_int, default=16)
    p.add_argument("--gen-length", type=positive_int, default=64)
    p.add_argument("--prompt", default="")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--reference", metavar="CORPUS", help="write validation chunks of CORPUS instead of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g = p.add_argument_group("sampler (defaults: the checkpoint's generation_config.json)")
    sampler_flags = add_generation_arguments(g, exclude=("max_new_tokens",))
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    loaded = load_for_generation(a.model, device=a.device)
    if loaded.tokenizer is None:
        raise UserError(f"{a.model} has no tokenizer; it is not a text checkpoint")
    t0 = time.perf_counter()
    if a.reference:
        rows = reference_texts(loaded.tokenizer, a.reference, a.num_samples, a.gen_length)
        what = f"{len(rows)} reference chunks of {a.reference} validation"
    else:
        overrides = given_settings(a, sampler_flags)
        config, _ = sampler_config_from(loaded.defaults, overrides)
        rows, nfe = sample_texts(loaded.model, loaded.tokenizer, config, a.num_samples, a.gen_length,
                                 prompt=a.prompt, batch_size=a.batch_size, seed=a.seed)
        what = f"{len(rows)} samples, {nfe} NFE each"
    write_samples(a.out, rows)
    print(f"{what} × {a.gen_length} tokens → {a.out} ({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    main()
