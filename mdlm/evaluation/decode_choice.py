"""Which decoding row is "the" speedup: the rule of docs/benchmarks/decoding.md, as one pure function.

Issue 17's quality bar (after Fast-dLLM, Wu et al. 2025, who report speedups "with about one point of accuracy
lost"): a faster row counts only if its samples are as good as those of LLaDA's loop on the same model —
generative perplexity ≤ 1.05× the reference's and mean unigram entropy within 0.1 nats of it (MDLM / ReMDM's
guard against repetitive text). A row whose tokens are all equal to the reference's (agreement 1.0) has the
reference's samples and so passes without being judged. Among the rows that pass, the fastest is chosen; every
other row is listed with the reason it was not.

Empty answers (an instruction model that emits EOS at once) make every comparison vacuous — an empty text is
"equal" to the reference's and scores a perfect genppl — so when the reference's answers are all empty no row is
chosen, and a row with a larger share of empty answers than the reference's is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GENPPL_RATIO_MAX = 1.05
ENTROPY_TOL_NATS = 0.1


@dataclass
class Choice:
    row: str | None  # the chosen row (None: no row passes)
    speedup: float | None
    why: str  # one line: why this row
    rejected: dict[str, str] = field(default_factory=dict)  # row → why not


def quality_verdict(q: dict | None, ref: dict | None, agreement: float | None,
                    genppl_ratio_max: float = GENPPL_RATIO_MAX, entropy_tol: float = ENTROPY_TOL_NATS) -> str | None:
    """None if a row with judged quality ``q`` ({genppl, entropy}) passes against the reference's ``ref``;
    else the reason it does not. ``agreement``: share of its tokens equal to the reference's."""
    if agreement is not None and agreement >= 1.0:
        return None
    if not q or ref is None or not _finite(q.get("genppl")) or not _finite(q.get("entropy")):
        return "not judged, and its tokens are not shown equal to the reference's"
    if not _finite(ref.get("genppl")) or not _finite(ref.get("entropy")) or ref["genppl"] <= 0:
        return "the reference row is not judged"
    ratio = q["genppl"] / ref["genppl"]
    if ratio > genppl_ratio_max:
        return f"genppl {ratio:.3f}x the reference's (> {genppl_ratio_max})"
    gap = abs(q["entropy"] - ref["entropy"])
    if gap > entropy_tol:
        return f"unigram entropy {gap:.3f} nats from the reference's (> {entropy_tol})"
    return None


def choose_speedup_row(speedups: dict[str, float | None], quality: dict[str, dict], agreement: dict[str, float | None],
                       reference: str = "llada", genppl_ratio_max: float = GENPPL_RATIO_MAX,
                       entropy_tol: float = ENTROPY_TOL_NATS, empty: dict[str, float] | None = None,
                       references: dict[str, dict | None] | None = None) -> Choice:
    """The fastest row (largest ``speedups[row]``, over the reference) whose quality passes :func:`quality_verdict`.

    ``quality[row]`` = {"genppl", "entropy"} (judged; the reference's under ``reference``), ``agreement[row]``
    the share of its tokens equal to the reference's, ``empty[row]`` the share of its answers that are empty
    (module docstring; None: not known, no check), ``references[row]`` the reference's quality to judge that row
    against (the reference's samples at the row's judged batch size; default ``quality[reference]`` for every row).
    Rows without a measured speedup are rejected."""
    ref_q = quality.get(reference)
    empty = empty or {}
    ref_empty = empty.get(reference)
    if ref_empty is not None and ref_empty >= 1.0:
        why = "the reference's answers are all empty (nothing but EOS or whitespace): nothing was decoded to compare"
        return Choice(None, None, why, {row: why for row in speedups if row != reference})
    rejected: dict[str, str] = {}
    passing: list[tuple[float, str]] = []
    for row, s in speedups.items():
        if row == reference:
            continue
        if not _finite(s):
            rejected[row] = "no speedup measured"
            continue
        if ref_empty is not None and empty.get(row) is not None and empty[row] > ref_empty:
            rejected[row] = f"{100 * empty[row]:.0f}% of its answers are empty (the reference: {100 * ref_empty:.0f}%)"
            continue
        ref_row = references.get(row) if references is not None else ref_q
        why = quality_verdict(quality.get(row), ref_row, agreement.get(row), genppl_ratio_max, entropy_tol)
        if why is None:
            passing.append((float(s), row))
        else:
            rejected[row] = why
    if not passing:
        return Choice(None, None, "no row passes the quality bar", rejected)
    s, row = max(passing)
    for s2, r2 in passing:
        if r2 != row:
            rejected[r2] = f"passes, but slower ({s2:.2f}x < {s:.2f}x)"
    exact = agreement.get(row) is not None and agreement[row] >= 1.0
    why = ("fastest row whose tokens all equal the reference's" if exact else
           f"fastest row with genppl <= {genppl_ratio_max}x and entropy within {entropy_tol} nats of the reference's")
    return Choice(row, s, why, rejected)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
