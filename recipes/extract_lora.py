"""Carry a full fine-tune back as a LoRA adapter (the truncated SVD of each projection's change).

A full fine-tune of ``recipes/adapt_ar.py --lora false --full_scope projections`` becomes a LoRA adapter: the
truncated SVD of each projection's change (``mdlm.adapt.extract``), plus the trained [MASK] row. The adapter applies
to the base that ``recipes/adapt_ar.py --base_only true`` (or ``recipes/rebuild_adapted.py``) rebuilds from the same
source on any machine, so the parts written by ``--parts`` are all that must outlive the GPU machine.

    python recipes/extract_lora.py --config recipes/configs/adapt_smollm2_long.yaml --source DIR \\
        --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf --tuned runs/smollm2_full --rank 64 \\
        --output_dir runs/smollm2_full_lora64 --parts out/smollm2_mdm_full_r64 [--base_out runs/smollm2_base]
    # CPU smoke run on the tests' tiny model:
    python recipes/extract_lora.py --config recipes/configs/adapt_tiny_cpu.yaml --tuned runs/adapt_tiny_full \\
        --rank 8 --output_dir runs/adapt_tiny_lora8

Prints the share of each projection's change (squared Frobenius norm) that the rank keeps; ``--output_dir`` also gets
it as ``extract_lora.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import mdlm  # noqa: F401  (registers the models with the Auto classes)
from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="the adaptation run's YAML (source, alignment, [MASK] token)")
    p.add_argument("--source", default=None, help="dir of the source causal LM (overrides the config's)")
    p.add_argument("--gguf_file", default=None, help="GGUF file inside --source (needs the gguf package)")
    p.add_argument("--tuned", required=True, help="the fully fine-tuned MDM dir (recipes/adapt_ar.py --lora false)")
    p.add_argument("--rank", type=int, default=64, help="LoRA rank of the extraction (file size grows linearly)")
    p.add_argument("--output_dir", required=True, help="new adapter dir (missing or empty)")
    p.add_argument("--parts", default=None, help="also pack the adapter (bf16) into PREFIX.tar.partNN + PREFIX.sha256")
    p.add_argument("--base_out", default=None, help="also save the un-trained base MDM here (for eval/adapt_elbo.py)")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> int:
    from transformers import AutoModelForMaskedLM, set_seed

    from mdlm.adapt.build import build_mdm, generation_defaults
    from mdlm.adapt.extract import extract_lora
    from mdlm.adapt.persist import pack_adapter
    from mdlm.adapt.rebuild import adapt_arguments, config_seed
    from mdlm.lora import save_adapter

    a = parse_args(argv)
    if a.rank < 1:
        raise UserError(f"--rank must be ≥ 1, got {a.rank}")
    if not os.path.isfile(os.path.join(a.tuned, "config.json")):
        raise UserError(f"--tuned {a.tuned!r} holds no model (no config.json)")
    for out in (a.output_dir, a.base_out):
        if out:
            refuse_overwrite(out, False)
    t0 = time.perf_counter()
    args = adapt_arguments(a.config, a.source, a.gguf_file)
    set_seed(config_seed(a.config))  # as recipes/adapt_ar.py before it builds the model (matters for random configs)
    base, tok = build_mdm(args)
    if a.base_out:
        base.save_pretrained(a.base_out, safe_serialization=True)
        tok.save_pretrained(a.base_out)
    tuned = AutoModelForMaskedLM.from_pretrained(a.tuned, dtype=base.dtype)
    peft_model, kept = extract_lora(base, tuned, a.rank, tok)
    save_adapter(peft_model, a.output_dir, tokenizer=tok, generation_defaults=generation_defaults(tok, args.seq_len))
    summary = {"rank": a.rank, "tuned": a.tuned, "kept_energy_mean": statistics.fmean(kept.values()),
               "kept_energy_min": min(kept.values()), "kept_energy": kept}
    with open(os.path.join(a.output_dir, "extract_lora.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(f"rank {a.rank}: keeps {summary['kept_energy_mean']:.1%} of the change's energy on average "
          f"(min {summary['kept_energy_min']:.1%}, {len(kept)} projections) → {a.output_dir}", flush=True)
    if a.parts:
        os.makedirs(os.path.dirname(os.path.abspath(a.parts)), exist_ok=True)
        for part in pack_adapter(a.output_dir, a.parts):
            print(f"{part}: {os.path.getsize(part):,} bytes", flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    main()
