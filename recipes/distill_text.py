"""Sample self-distilled training rows from an AR source into a packed .npz (optionally merged with another).

Rows come from ``mdlm.adapt.distill``; with ``--merge_with`` they join an existing packed file's training rows (its
validation splits kept as they are), for ``recipes/adapt_ar.py``.

    # on the GPU machine: 20,480 rows × 512 tokens (10.5 M tokens) from SmolLM2, merged with the offline mix
    python recipes/distill_text.py --source /tmp --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \\
        --separator "<|endoftext|>" --rows 20480 --batch_size 1024 --merge_with .data/adapt_smollm2.npz \\
        --out /tmp/adapt_distill.npz
    # then: recipes/adapt_ar.py --config recipes/configs/adapt_smollm2_long.yaml --data /tmp/adapt_distill.npz ...
    # CPU smoke run on any small HF causal-LM dir:
    python recipes/distill_text.py --source runs/tiny_src --rows 8 --seq_len 64 --out /tmp/distill.npz --device cpu

Prints the sampling speed (tokens/s). The rows use the source's own tokenizer ids, so the merged file must have been
tokenised with the same tokenizer (``--merge_with`` from ``recipes/adapt_ar.py --prepare_data`` of that source).
"""

from __future__ import annotations

import time

import numpy as np
import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", required=True, help="dir of the AR source (HF causal LM, or the dir of --gguf_file)")
    p.add_argument("--gguf_file", default=None, help="GGUF file inside --source (needs the gguf package)")
    p.add_argument("--separator", default=None, help="document separator token (default: the tokenizer's BOS, else EOS)")
    p.add_argument("--rows", type=int, required=True, help="rows to sample")
    p.add_argument("--seq_len", type=int, default=None, help="tokens per row (default: the --merge_with file's)")
    p.add_argument("--batch_size", type=int, default=512, help="rows sampled together")
    p.add_argument("--temperature", type=float, default=1.0, help="1.0 = the model's own distribution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--merge_with", default=None, help="packed .npz whose train rows join the sampled ones (splits kept)")
    p.add_argument("--out", required=True, help=".npz to write")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> int:
    from mdlm.adapt.distill import merge_train, sample_rows
    from mdlm.adapt.source import load_causal_lm
    from mdlm.data.packed import save_packed

    a = parse_args(argv)
    refuse_overwrite(a.out, a.overwrite)
    splits: dict[str, np.ndarray] = {}
    if a.merge_with:
        try:
            with np.load(a.merge_with) as z:
                splits = {k: z[k] for k in z.files}
        except OSError as e:
            raise UserError(f"--merge_with {a.merge_with}: {e}") from None
        if "train" not in splits:
            raise UserError(f"--merge_with {a.merge_with} has no 'train' split (it has {', '.join(splits)})")
    seq_len = a.seq_len or (splits["train"].shape[1] if splits else None)
    if seq_len is None:
        raise UserError("pass --seq_len (or --merge_with a packed file to take its row length)")
    dtype = torch.bfloat16 if a.device.startswith("cuda") else torch.float32
    lm, tok = load_causal_lm(a.source, a.gguf_file, dtype=dtype)
    lm.to(a.device)
    token = a.separator or tok.bos_token or tok.eos_token
    sep = tok.convert_tokens_to_ids(token) if token is not None else None
    if sep is None or sep == tok.unk_token_id:
        raise UserError(f"the tokenizer has no separator token {token!r}; pass --separator")
    t0 = time.perf_counter()
    rows, tps = sample_rows(lm, sep, a.rows, seq_len, batch_size=a.batch_size, temperature=a.temperature, seed=a.seed)
    print(f"sampled {rows.size:,} tokens ({a.rows} rows × {seq_len}) at {tps:,.0f} tokens/s "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    if splits:
        print(f"merged with {splits['train'].shape[0]} rows of {a.merge_with}", flush=True)
        splits["train"] = merge_train(splits["train"], rows, seed=a.seed)
    else:
        splits = {"train": rows}
    save_packed(a.out, splits, vocab_size=len(tok))
    print(f"wrote {a.out}: " + ", ".join(f"{k} {v.shape[0]} rows" for k, v in splits.items()), flush=True)
    return 0


if __name__ == "__main__":
    main()
