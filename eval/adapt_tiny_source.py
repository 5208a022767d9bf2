"""A seeded random Llama causal LM saved as an HF dir (config, safetensors, tokenizer): tiny, or of a given shape.

Tiny, it is the stand-in source of CPU dry runs of the SmolLM2 scripts (``DRY=1 bash eval/gpu/sft_smollm2.sh``;
tests). With ``--tokenizer-source`` (an HF
dir, or the dir of ``--gguf-file``) it carries that tokenizer and chat template, e.g. SmolLM2's from its GGUF.
With ``--config`` (a JSON file of a Llama config) the random model has that shape instead, e.g. SmolLM2-135M's for a
speed test on the GPU machine before the real weights have arrived (``eval/gpu/adapt_compile_bench.sh``).

    python eval/adapt_tiny_source.py --out /tmp/tiny_src [--tokenizer-source $SMOL --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf]
    python eval/adapt_tiny_source.py --out /tmp/smol_rand --tokenizer-source DIR --config DIR/random_config.json
"""

from __future__ import annotations

import os

import torch

from mdlm.cli import ArgumentParser, refuse_overwrite, run_cli


def make_tiny_source(out: str, tokenizer, hidden: int = 64, layers: int = 2, seed: int = 0,
                     config: dict | None = None) -> str:
    """Save a seeded random ``LlamaForCausalLM`` + ``tokenizer``: by default tiny (``hidden``, ``layers``, tied
    embeddings, vocabulary ``len(tokenizer)``); with ``config`` (LlamaConfig fields, e.g. a real model's) that shape,
    its own ``vocab_size`` if it has one (else ``len(tokenizer)``). ValueError when that vocabulary is smaller than the
    tokenizer's."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    if config is not None:
        cfg = LlamaConfig(**{"vocab_size": len(tokenizer), **{k: v for k, v in config.items() if k != "model_type"}})
        if cfg.vocab_size < len(tokenizer):
            raise ValueError(f"the config's vocab_size {cfg.vocab_size} is smaller than the tokenizer's {len(tokenizer)}")
    else:
        cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


@run_cli
def main() -> int:
    from transformers import AutoTokenizer

    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer-source", default="gpt2", help="HF dir (or the GGUF's dir); default: gpt2 (mdlm's copy)")
    p.add_argument("--gguf-file", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default=None, help="JSON file of Llama config fields (the shape); default: tiny")
    a = p.parse_args()
    refuse_overwrite(os.path.join(a.out, "config.json"), False)
    if a.tokenizer_source == "gpt2":
        from mdlm.tokenizers import load_tokenizer

        tok = load_tokenizer("gpt2")
        tok.mask_token = None
    else:
        tok = AutoTokenizer.from_pretrained(a.tokenizer_source, **({"gguf_file": a.gguf_file} if a.gguf_file else {}))
    config = None
    if a.config is not None:
        import json

        with open(a.config) as f:
            config = json.load(f)
        if config.get("model_type", "llama") != "llama":
            raise ValueError(f"--config {a.config}: model_type {config['model_type']!r}, only llama is made here")
    out = make_tiny_source(a.out, tok, seed=a.seed, config=config)
    print(f"random source written to {out} (vocab {len(tok)})", flush=True)
    return 0


if __name__ == "__main__":
    main()
