"""The MDM-vs-AR perplexity gap as curves over training tokens (MDLM, Sahoo et al. 2024, Table 1; LLaDA §3).

Both runs log ``eval_nll`` (nats/token) on the same validation tokens at the same steps: exact NLL for the causal
model, the Monte-Carlo NELBO bound for the masked-diffusion model. At equal tokens the perplexity ratio is
exp(NELBO_MDM − NLL_AR) ≥ the true ratio (the ELBO is a bound).
"""

from __future__ import annotations

import math


def eval_curve(log_history: list[dict], tokens_per_step: int) -> list[tuple[int, int, float]]:
    """(step, training tokens, eval_nll) for every evaluation record of a Trainer's ``log_history``, in step order
    (a repeated step keeps its last record)."""
    by_step = {int(h["step"]): float(h["eval_nll"]) for h in log_history if "eval_nll" in h and "step" in h}
    return [(s, s * tokens_per_step, by_step[s]) for s in sorted(by_step)]


def gap(ar: list[tuple[int, int, float]], mdm: list[tuple[int, int, float]]) -> list[dict]:
    """Rows at the steps both curves have: tokens, AR ppl, MDM ppl bound, ratio = exp(nll_mdm − nll_ar)."""
    a = {s: (tok, nll) for s, tok, nll in ar}
    rows = []
    for s, tok, nll in mdm:
        if s in a:
            if a[s][0] != tok:
                raise ValueError(f"step {s}: the AR run saw {a[s][0]} tokens, the MDM run {tok}: not equal tokens")
            rows.append({"step": s, "tokens": tok, "ar_nll": a[s][1], "mdm_nll": nll,
                         "ar_ppl": math.exp(a[s][1]), "mdm_ppl": math.exp(nll), "ratio": math.exp(nll - a[s][1])})
    if not rows:
        raise ValueError("the two runs share no evaluation step")
    return rows


def best(curve: list[tuple[int, int, float]]) -> tuple[int, int, float]:
    """The evaluation with the lowest NLL (step, tokens, nll)."""
    return min(curve, key=lambda r: r[2])
