"""Curves of the sampling grids (text and images): one line per (schedule, strategy) over the step counts, a
colour per strategy and a line style per schedule, so 4 strategies × 3 schedules stay apart."""

from __future__ import annotations

from typing import Any

SCHEDULE_STYLES = {"cosine": "-", "linear": "--", "exp": ":"}


def step_curves(rows: list[dict]) -> list[tuple[dict[str, Any], list[dict]]]:
    """(matplotlib line keywords, the rows sorted by steps) per (schedule, strategy) of ``rows`` with steps > 0
    (a reference row has steps 0), in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["steps"]:
            groups.setdefault((r["schedule"], r["strategy"]), []).append(r)
    colors: dict[str, str] = {}
    curves = []
    for (sched, strat), rs in groups.items():
        color = colors.setdefault(strat, f"C{len(colors) % 10}")
        kw = dict(linestyle=SCHEDULE_STYLES.get(sched, "-."), color=color, marker="o", label=f"{strat}, {sched}")
        curves.append((kw, sorted(rs, key=lambda r: r["steps"])))
    return curves
