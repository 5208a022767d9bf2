"""Monte-Carlo NELBO of a checkpoint on held-out text: nats/token, bits/token, perplexity bound.

    python eval/elbo.py --model runs/shakespeare_tiny                         # Shakespeare validation plays
    python eval/elbo.py --model DIR --data bible --num-samples 8 --seq-len 256
    python eval/elbo.py --model DIR --data my_texts.jsonl --max-sequences 500
    python eval/elbo.py --model DIR --heldout-file my_novel.txt              # every token of the file

K samples per sequence with stratified masked counts (LLaDA / MDLM evaluation; see mdlm/evaluation/elbo.py).
``--json FILE`` also writes the figures (an existing file is refused unless ``--overwrite``).
The data is packed like training (EOS between documents) at --seq-len (default: the model's
context, capped at 1024). A LoRA adapter dir works as --model.
"""

from __future__ import annotations

import time

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.data.text import SAMPLE_BY, heldout_text, load_text_corpus, pack_dataset
from mdlm.evaluation.files import write_json
from mdlm.pipelines import load_for_generation
from mdlm.training.bd3 import model_corpus_elbo


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="shakespeare", help="corpus name or path (see mdlm/data/text.py); its validation split")
    p.add_argument("--heldout-file", help="score all of this .txt/.jsonl file or dir as held-out text (instead of --data)")
    p.add_argument("--sample-by", choices=SAMPLE_BY, default="auto", help="documents of a .txt: by line, paragraph or file")
    p.add_argument("--num-samples", type=positive_int, default=8)
    p.add_argument("--seq-len", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--max-sequences", type=positive_int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    a = p.parse_args()
    refuse_overwrite(a.json, a.overwrite)
    loaded = load_for_generation(a.model, device=a.device)
    tok, model = loaded.tokenizer, loaded.model
    if tok is None or tok.mask_token_id is None:
        raise UserError(f"{a.model} has no tokenizer with a [MASK] token")
    ctx = getattr(model.config, "max_position_embeddings", 1024)
    seq_len = a.seq_len if a.seq_len is not None else min(ctx, 1024)
    if seq_len > ctx:
        raise UserError(f"--seq-len {seq_len} exceeds the model's context of {ctx}")
    if a.heldout_file:  # the whole file, its last partial sequence too (padding is not scored)
        a.data = a.heldout_file
        data = pack_dataset(heldout_text(a.heldout_file, a.sample_by), tok, seq_len, keep_tail=True)
    else:
        data = pack_dataset(load_text_corpus(a.data, a.sample_by)["validation"], tok, seq_len, keep_tail="if_short")
    if a.max_sequences:
        data = data.select(range(min(a.max_sequences, len(data))))
    if len(data) == 0:
        raise UserError(f"{a.data}: no text to score")
    ids = torch.tensor(data["input_ids"])  # (N, L)
    scored = torch.arange(ids.shape[1]) < torch.tensor(data["length"])[:, None]  # (N, L) padding not scored
    g = torch.Generator(device=a.device).manual_seed(a.seed)
    t0 = time.perf_counter()
    res = model_corpus_elbo(model, ids, mask_id=tok.mask_token_id, eligible=scored, batch_size=a.batch_size,
                      num_samples=a.num_samples, generator=g, device=a.device, desc="ELBO")
    out = {"model": a.model, "data": a.data, "sequences": len(ids), "seq_len": seq_len, "tokens": int(res.num_tokens.sum()),
           "num_samples": a.num_samples, "nats_per_token": res.nats_per_token, "bits_per_token": res.bits_per_token,
           "perplexity": res.perplexity, "seconds": round(time.perf_counter() - t0, 2)}
    print(f"perplexity ≤ {res.perplexity:.3f} | {res.bits_per_token:.4f} bits/token | {res.nats_per_token:.4f} nats/token "
          f"| {out['tokens']} tokens, {a.num_samples} samples each ({a.data}{'' if a.heldout_file else ' validation'})")
    if a.json:
        write_json(a.json, out)
    return 0


if __name__ == "__main__":
    main()
