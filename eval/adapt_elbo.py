"""ELBO perplexity of an adapted MDM vs the exact perplexity of its AR source, on the same packed held-out rows.

    python eval/adapt_elbo.py --base runs/smollm2_mdm_base --adapter runs/smollm2_mdm_lora \\
        --data .data/adapt_smollm2.npz --split validation_wiki --rows 8 --samples 2

The AR source is the base's own backbone run causally (with a LoRA adapter: the adapter switched off), scored with
the same separator column (``mdlm.adapt.ar_reference``). When ``--base`` is a full fine-tune (or a rebuilt model with
its adapter merged), its backbone is no longer the source: pass the un-trained MDM (``recipes/adapt_ar.py --base_only
true``) as ``--ar-base``. Runs on a CPU in a minute or two for a few rows; a check that a rebuilt model (base rebuilt
from the GGUF + adapter carried back from a GPU) reproduces the GPU's figures.
"""

from __future__ import annotations

import json
import math


import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.adapt.ar_reference import ar_dataset_nll  # noqa: E402
from mdlm.cli import ArgumentParser, run_cli  # noqa: E402
from mdlm.data.packed import load_packed  # noqa: E402
from mdlm.evaluation.elbo import elbo_nll  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402


def parse(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the MDM dir (recipes/adapt_ar.py --base_only, or a full checkpoint)")
    p.add_argument("--adapter", help="a LoRA adapter dir on top of --base")
    p.add_argument("--ar-base", help="the MDM dir whose backbone, run causally, is the AR reference (default: --base, "
                   "adapter off); needed when --base is a full fine-tune")
    p.add_argument("--data", required=True, help="packed .npz (recipes/adapt_ar.py --prepare_data)")
    p.add_argument("--split", default="validation_wiki")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--samples", type=int, default=2, help="Monte-Carlo samples of the ELBO per row")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> int:
    a = parse(argv)
    loaded = load_for_generation(a.base, a.adapter, device=a.device)
    model, tok = loaded.model, loaded.tokenizer
    rows = torch.as_tensor(load_packed(a.data, a.split, a.rows)["input_ids"]).to(a.device)  # (N, L)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    sep = inner.config.shift_token_id if inner.config.shift_token_id is not None else tok.bos_token_id
    g = torch.Generator(device=a.device).manual_seed(a.seed)
    nll, n = 0.0, 0
    for i in range(0, rows.shape[0], a.batch):
        x = rows[i : i + a.batch]
        res = elbo_nll(lambda z, am: model(input_ids=z).logits, x, eligible=torch.ones_like(x, dtype=torch.bool),
                       mask_id=tok.mask_token_id, num_samples=a.samples, generator=g)
        nll += float(res.nll_sum.sum())
        n += int(res.num_tokens.sum())
    elbo = nll / n
    if a.ar_base:
        ref = load_for_generation(a.ar_base, None, device=a.device).model
        ar = ar_dataset_nll(ref.lm, rows, sep, tok.mask_token_id, a.batch)
    elif hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            ar = ar_dataset_nll(inner.lm, rows, sep, tok.mask_token_id, a.batch)
    else:
        ar = ar_dataset_nll(inner.lm, rows, sep, tok.mask_token_id, a.batch)
    out = {"model": a.adapter or a.base, "ar_reference": a.ar_base or a.base, "split": a.split,
           "rows": int(rows.shape[0]), "tokens": n, "samples": a.samples, "elbo_ppl": math.exp(elbo),
           "ar_ppl": math.exp(ar), "ratio": math.exp(elbo - ar)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    main()
