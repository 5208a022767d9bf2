"""One short training run of a recipe (recipes/train_text.py, recipes/train_image.py) as its own process — the
command a user would type — and what the grids read back from it: the validation figures the recipe wrote
(``eval_metrics.json``), the step count it reached and its last logged training loss (from its log lines)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ...cli import UserError

# every training run of a grid: no checkpoints, no mid-run evaluation, no samples, plain log lines
FORCED_TRAIN_ARGS = ["--save_strategy", "no", "--eval_strategy", "no", "--sample_on_end", "0", "--disable_tqdm", "true"]
_BUDGET = re.compile(r"time budget of .* reached at step (\d+)")


@dataclass
class RecipeRun:
    """What one run left: eval_metrics.json, the steps it trained, its last logged loss, its output's tail."""

    metrics: dict
    steps: int
    final_train_loss: float | None
    log_tail: str


def recipes_dir() -> Path:
    """The repository's recipes/ (next to the mdlm package of an editable install)."""
    d = Path(__file__).resolve().parents[3] / "recipes"
    if not d.is_dir():
        raise UserError(f"the training grids run the repository's recipes, and {d} does not exist "
                        "(install mdlm from a checkout: pip install -e .)")
    return d


def last_logged_loss(log: str) -> float | None:
    """The last ``{'loss': ...}`` line the Trainer printed (``--disable_tqdm true``), or None."""
    loss = None
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("{") and "'loss'" in line:
            try:
                loss = float(ast.literal_eval(line)["loss"])
            except (ValueError, SyntaxError, KeyError, TypeError):
                continue
    return loss


def run_recipe(recipe: str, argv: list[str], output_dir: str, max_steps: int) -> RecipeRun:
    """``python recipes/<recipe>.py ARGV`` with :data:`FORCED_TRAIN_ARGS`; RuntimeError with the run's last
    output lines when it fails or leaves no eval_metrics.json."""
    cmd = [sys.executable, str(recipes_dir() / f"{recipe}.py"), *argv, *FORCED_TRAIN_ARGS]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    tail = "\n".join(proc.stdout.splitlines()[-5:])
    metrics_path = os.path.join(output_dir, "eval_metrics.json")
    if proc.returncode != 0 or not os.path.isfile(metrics_path):
        raise RuntimeError(f"{recipe} exited with status {proc.returncode}: {tail}")
    with open(metrics_path, encoding="utf-8") as f:
        metrics = json.load(f)
    budget = _BUDGET.findall(proc.stdout)
    steps = int(budget[-1]) if budget else max_steps
    return RecipeRun(metrics, steps, last_logged_loss(proc.stdout), tail)
