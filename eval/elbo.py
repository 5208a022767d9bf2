"""Monte-Carlo NELBO of a checkpoint on held-out text: nats/token, bits/token, perplexity bound.

    python eval/elbo.py --model runs/shakespeare_tiny                         # Shakespeare validation plays
    python eval/elbo.py --model DIR --data bible --num-samples 8 --seq-len 256
    python eval/elbo.py --model DIR --data my_texts.jsonl --max-sequences 500
    python eval/elbo.py --model DIR --heldout-file my_novel.txt              # every token of the file

K samples per sequence with stratified masked counts (LLaDA / MDLM evaluation; see mdlm/elbo.py).
The data is packed like training (EOS between documents) at --seq-len (default: the model's
context, capped at 1024). A LoRA adapter dir works as --model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import UserError, run_cli  # noqa: E402
from mdlm.data.text import SAMPLE_BY, heldout_text, load_text_corpus, pack_dataset  # noqa: E402
from mdlm.elbo import ElboResult, elbo_nll  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402
from mdlm.sampling import as_logits_fn  # noqa: E402


@run_cli
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="shakespeare", help="corpus name or path (see mdlm/data/text.py); its validation split")
    p.add_argument("--heldout-file", help="score all of this .txt/.jsonl file or dir as held-out text (instead of --data)")
    p.add_argument("--sample-by", choices=SAMPLE_BY, default="auto", help="documents of a .txt: by line, paragraph or file")
    p.add_argument("--num-samples", type=int, default=8)
    p.add_argument("--seq-len", type=int)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-sequences", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args()
    if a.num_samples < 1:
        raise UserError(f"--num-samples must be ≥ 1, got {a.num_samples}")
    loaded = load_for_generation(a.model, device=a.device)
    tok, model = loaded.tokenizer, loaded.model
    if tok is None or tok.mask_token_id is None:
        raise UserError(f"{a.model} has no tokenizer with a [MASK] token")
    ctx = getattr(model.config, "max_position_embeddings", 1024)
    seq_len = a.seq_len or min(ctx, 1024)
    if seq_len > ctx:
        raise UserError(f"--seq-len {seq_len} exceeds the model's context of {ctx}")
    if a.heldout_file:  # the whole file, its last partial sequence too (padding is not scored)
        a.data = a.heldout_file
        data = pack_dataset(heldout_text(a.heldout_file, a.sample_by), tok, seq_len, keep_tail=True)
    else:
        data = pack_dataset(load_text_corpus(a.data, a.sample_by)["validation"], tok, seq_len)
    if a.max_sequences:
        data = data.select(range(min(a.max_sequences, len(data))))
    ids = torch.tensor(data["input_ids"])  # (N, L)
    scored = torch.arange(ids.shape[1]) < torch.tensor(data["length"])[:, None]  # (N, L)
    fn = as_logits_fn(model)
    g = torch.Generator(device=a.device).manual_seed(a.seed)
    nll, ntok = [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in tqdm(range(0, len(ids), a.batch_size), desc="ELBO", disable=not sys.stderr.isatty()):
            x = ids[i : i + a.batch_size].to(a.device)
            r = elbo_nll(fn, x, eligible=scored[i : i + a.batch_size].to(a.device), mask_id=tok.mask_token_id,
                         num_samples=a.num_samples, generator=g)
            nll.append(r.nll_sum.cpu())
            ntok.append(r.num_tokens.cpu())
    res = ElboResult(torch.cat(nll), torch.cat(ntok))
    out = {"model": a.model, "data": a.data, "sequences": len(ids), "seq_len": seq_len, "tokens": int(res.num_tokens.sum()),
           "num_samples": a.num_samples, "nats_per_token": res.nats_per_token, "bits_per_token": res.bits_per_token,
           "perplexity": res.perplexity, "seconds": round(time.perf_counter() - t0, 2)}
    print(f"perplexity ≤ {res.perplexity:.3f} | {res.bits_per_token:.4f} bits/token | {res.nats_per_token:.4f} nats/token "
          f"| {out['tokens']} tokens, {a.num_samples} samples each ({a.data}{'' if a.heldout_file else ' validation'})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    main()
