"""lm-evaluation-harness tasks on an mdlm checkpoint (log-likelihood through the ELBO, as LLaDA).

    pip install "lm-eval>=0.4"
    python eval/lm_eval_run.py --model runs/shakespeare_tiny --tasks my_task --include-path my_tasks/
    python eval/lm_eval_run.py --model DIR --tasks piqa arc_easy --mc-num 16 --limit 200 --out results.json

Multiple-choice tasks score each choice by minus its Monte-Carlo NELBO given the context
(``--mc-num`` samples; see mdlm/evaluation/lm_eval_adapter.py). ``--include-path`` is a folder of
task YAMLs (a local task may read JSON/JSONL files with ``dataset_path: json`` and
``dataset_kwargs: {data_files: ...}``). Prints lm-eval's results table; ``--out`` also writes the
results as JSON (refused if it exists, unless ``--overwrite``). A LoRA adapter dir works as --model.
"""

from __future__ import annotations

import argparse
import os

import torch

from mdlm.cli import ArgumentParser, UserError, non_negative_int, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.files import write_json


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint dir, or a LoRA adapter dir")
    p.add_argument("--tasks", nargs="+", required=True, help="lm-eval task (or group) names")
    p.add_argument("--include-path", help="folder of extra task YAMLs")
    p.add_argument("--mc-num", type=positive_int, default=8, help="Monte-Carlo ELBO samples per request")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--limit", type=float, help="at most this many documents per task (a fraction if < 1)")
    p.add_argument("--num-fewshot", type=non_negative_int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", help="write the results (without per-sample logs) to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args(argv)
    if a.limit is not None and a.limit <= 0:
        p.error(f"argument --limit: must be > 0, got {a.limit:g}")
    refuse_overwrite(a.out, a.overwrite)
    return a


@run_cli
def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
        from lm_eval.utils import make_table
    except ImportError as e:
        raise UserError(f'lm-eval is not installed ({e}); pip install "lm-eval>=0.4"') from None
    from mdlm.evaluation.lm_eval_adapter import MDLMEvalLM

    if a.include_path and not os.path.isdir(a.include_path):
        raise UserError(f"--include-path {a.include_path!r} is not a directory")
    lm = MDLMEvalLM(pretrained=a.model, device=a.device, batch_size=a.batch_size, mc_num=a.mc_num, seed=a.seed)
    tm = None
    if a.include_path:  # indexing lm-eval's own ~10k task YAMLs takes tens of seconds: skip it when possible
        tm = TaskManager(include_path=a.include_path, include_defaults=False)
        if not all(t in tm.all_tasks for t in a.tasks):
            tm = None
    tm = tm or TaskManager(include_path=a.include_path)
    limit = None if a.limit is None else (int(a.limit) if a.limit >= 1 else a.limit)
    res = lm_eval.simple_evaluate(model=lm, tasks=a.tasks, task_manager=tm, limit=limit, num_fewshot=a.num_fewshot,
                                  log_samples=False, random_seed=a.seed, numpy_random_seed=a.seed,
                                  torch_random_seed=a.seed, fewshot_random_seed=a.seed)
    if res is None:
        return 0
    print(make_table(res))
    if res.get("groups"):
        print(make_table(res, "groups"))
    if a.out:
        keep = {k: res[k] for k in ("results", "groups", "group_subtasks", "configs", "versions", "n-shot",
                                    "higher_is_better", "n-samples") if k in res}
        keep["model"] = {"path": a.model, "mc_num": a.mc_num, "seed": a.seed, "batch_size": a.batch_size}
        write_json(a.out, keep, default=str)
    return 0


if __name__ == "__main__":
    main()
