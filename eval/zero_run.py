"""recipes/train_text.py, unchanged, plus a per-rank record of log times and peak GPU memory for the ZeRO
scaling benchmark (eval/gpu/zero_scaling.sh):

    deepspeed --num_gpus 2 eval/zero_run.py --record DIR --config recipes/configs/gpt2_350m.yaml \\
        --deepspeed recipes/deepspeed/zero2.json [any train_text.py option]

``--record DIR`` gets ``rank{R}.json`` per rank (mdlm.training.run_record.RunRecorder); every other argument goes
to the recipe as is.
"""

from __future__ import annotations

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _recipe():
    spec = importlib.util.spec_from_file_location("train_text", os.path.join(ROOT, "recipes", "train_text.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _option(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else default


def _split(argv: list[str]) -> tuple[str, list[str]]:
    """``--record DIR`` out of the recipe's arguments (``--local_rank=N`` from the deepspeed launcher stays)."""
    if "--record" not in argv or argv.index("--record") + 1 >= len(argv):
        from mdlm.cli import UserError

        raise UserError("--record DIR is required (where each rank writes its record)")
    i = argv.index("--record")
    return argv[i + 1], argv[:i] + argv[i + 2:]


def seq_len_of(argv: list[str]) -> int:
    """The training sequence length: ``--seq_len`` on the command line, else the ``--config`` YAML's, else 256
    (DataArguments' default)."""
    import yaml

    if "--seq_len" in argv:
        return int(_option(argv, "--seq_len", "0"))
    cfg = _option(argv, "--config", "")
    if cfg:
        with open(cfg, encoding="utf-8") as f:
            return int((yaml.safe_load(f) or {}).get("seq_len", 256))
    return 256


def main() -> int:
    record, argv = _split(sys.argv[1:])
    from mdlm.training.run_record import RunRecorder

    recipe = _recipe()
    seq_len = seq_len_of(argv)
    return recipe.run_recipe(lambda a: recipe.train(a, callbacks=(RunRecorder(record, seq_len),)), argv)


if __name__ == "__main__":
    from mdlm.cli import run_cli

    run_cli(main)()
