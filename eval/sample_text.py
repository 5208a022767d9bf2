"""Write text samples of a checkpoint (or reference chunks of real text) as JSONL for eval/genppl.py.

    python eval/sample_text.py --model runs/base_tiny --num-samples 16 --gen-length 64 --out s.jsonl \\
        --steps 64 --temperature 1 --remasking random            # any sampler flag of recipes/generate.py
    python eval/sample_text.py --model runs/base_tiny --reference shakespeare --num-samples 16 --gen-length 64 \\
        --out ref.jsonl                                           # validation text cut to 64 model tokens

Each line: ``{"text", "prompt"?, "ids"}`` (``ids``: the generated model tokens). Sampler defaults come from
the checkpoint's generation_config.json; the flags override them. Unconditional unless ``--prompt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import UserError, run_cli  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402
from mdlm.pipelines.text import build_text_canvas, sampler_config_from  # noqa: E402
from mdlm.sampling import SamplerConfig, add_generation_arguments, generate, given_settings, trim_at_eos  # noqa: E402


@torch.no_grad()
def sample_texts(
    model: torch.nn.Module, tok, config: SamplerConfig, num_samples: int, gen_length: int, *,
    prompt: str = "", batch_size: int = 16, seed: int = 0,
) -> tuple[list[dict], int]:
    """``num_samples`` generations of ``gen_length`` tokens after ``prompt`` ("" = unconditional), in
    batches; batch k uses seed ``seed + k``. Returns (rows {"text", "prompt"?, "ids"}, NFE per sample)."""
    device = next(model.parameters()).device
    suppress = [i for i in (tok.pad_token_id,) if i is not None and i != tok.eos_token_id]
    rows, nfe = [], 0
    for k, b in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - b)
        canvas, attn, cond = build_text_canvas(tok, [prompt] * n, gen_length,
                                               getattr(model.config, "max_position_embeddings", None))
        out = generate(model, canvas.to(device), mask_id=tok.mask_token_id, config=config,
                       attention_mask=attn.to(device), cond_mask=cond.to(device), suppress_tokens=suppress,
                       eos_id=tok.eos_token_id, generator=torch.Generator(device=device).manual_seed(seed + k),
                       vocab_size=len(tok))
        nfe = max(nfe, out.nfe)
        gen = out.sequences[:, canvas.shape[1] - gen_length :]  # (n, gen_length)
        for ids in trim_at_eos(gen, tok.eos_token_id):
            ids = [int(i) for i in ids]
            row = {"text": tok.decode(ids, skip_special_tokens=True), "ids": ids}
            if prompt:
                row["prompt"] = prompt
            rows.append(row)
    return rows, nfe


def reference_texts(tok, corpus: str, num_samples: int, length: int) -> list[dict]:
    """The first ``num_samples`` chunks of ``length`` model tokens of ``corpus``'s validation split, decoded:
    real text of the samples' length, to put the samples' genppl and entropy in context."""
    from mdlm.data.text import load_text_corpus, pack_dataset

    data = pack_dataset(load_text_corpus(corpus)["validation"], tok, length)
    n = min(num_samples, len(data))
    stride = max(len(data) // n, 1)  # spread over the split, not the first scene only
    rows = []
    for i in range(n):
        ids = [int(t) for t in data[i * stride]["input_ids"]]
        rows.append({"text": tok.decode(ids, skip_special_tokens=True), "ids": ids})
    return rows


def write_jsonl(path: str, rows: list[dict], force: bool = False) -> None:
    if os.path.exists(path) and not force:
        raise UserError(f"{path} exists; pass --force to overwrite it")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


@run_cli
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, help="JSONL to write")
    p.add_argument("--force", action="store_true")
    p.add_argument("--num-samples", type=int, default=16)
    p.add_argument("--gen-length", type=int, default=64)
    p.add_argument("--prompt", default="")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--reference", metavar="CORPUS", help="write validation chunks of CORPUS instead of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g = p.add_argument_group("sampler (defaults: the checkpoint's generation_config.json)")
    sampler_flags = add_generation_arguments(g, exclude=("max_new_tokens",))
    a = p.parse_args()
    if a.num_samples < 1 or a.gen_length < 1 or a.batch_size < 1:
        raise UserError("--num-samples, --gen-length and --batch-size must be ≥ 1")
    if os.path.exists(a.out) and not a.force:
        raise UserError(f"{a.out} exists; pass --force to overwrite it")
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
    write_jsonl(a.out, rows, a.force)
    print(f"{what} × {a.gen_length} tokens → {a.out} ({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    main()
