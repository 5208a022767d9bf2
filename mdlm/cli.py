"""Command-line plumbing shared by the recipes: YAML config + ``--key value`` overrides parsed by
``HfArgumentParser`` into dataclasses, and one clear error line (exit 2) on bad input."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from transformers import HfArgumentParser

from .precision import reconcile_matmul_precision


class UserError(ValueError):
    """Bad input from the user: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors (a wrong-typed value, a missing required option, a bad
    choice) raise one :class:`UserError` line instead of printing the whole usage block; ``-h`` still prints
    the full help. Use it for every script's parser."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        raise UserError(f"{message} (see {self.prog} --help)")


class _HfParser(HfArgumentParser):
    """``HfArgumentParser`` with :class:`ArgumentParser`'s one-line usage errors."""

    def error(self, message: str):  # noqa: D102
        raise UserError(f"{message} (see {self.prog} --help)")


def _yaml_to_argv(cfg: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for k, v in cfg.items():
        if isinstance(v, (list, tuple)):
            argv += [f"--{k}", *[str(x) for x in v]]
        elif isinstance(v, dict):
            argv += [f"--{k}", json.dumps(v)]
        elif v is None:
            continue
        else:
            argv += [f"--{k}", str(v)]
    return argv


def parse_config_and_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """``--config FILE.yaml`` (optional) then ``--key value`` overrides → one instance per dataclass.

    Keys from the YAML and the command line go through the same parser, so an unknown key in either
    is an error naming it; command-line values override the file.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg_args: list[str] = []
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise UserError("--config needs a YAML file")
        path = argv[i + 1]
        del argv[i : i + 2]
        try:
            with open(path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f) or {}
        except OSError as e:
            raise UserError(f"cannot read config {path!r}: {e.strerror}") from None
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
            raise UserError(f"config {path!r} is not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
        if not isinstance(cfg, dict):
            raise UserError(f"config {path!r} must be a mapping of key: value")
        parser = _HfParser(dataclass_types)
        known = {a.dest for a in parser._actions}
        unknown = sorted(k for k in cfg if k not in known)
        if unknown:
            raise UserError(f"unknown config key(s) in {path}: {', '.join(unknown)}")
        cfg_args = _yaml_to_argv(cfg)
    parser = _HfParser(dataclass_types)
    out = parser.parse_args_into_dataclasses(args=cfg_args + argv, return_remaining_strings=True)
    *parsed, rest = out
    if rest:
        raise UserError(f"unknown argument(s): {' '.join(rest)}")
    for args in parsed:
        check_best_metric(args)
    reconcile_matmul_precision()  # TrainingArguments may have set TF32 through torch's new API: keep it readable
    return tuple(parsed)


LOWER_IS_BETTER = ("nll", "bits_per_token", "ppl")  # the validation metrics the recipes log, all lower-is-better


def check_best_metric(args) -> None:
    """transformers' TrainingArguments take every metric but ``*loss`` as higher-is-better unless
    ``--greater_is_better false`` is given, so ``--load_best_model_at_end --metric_for_best_model nll`` alone would
    keep the *worst* checkpoint: refuse it (any object without those fields passes)."""
    metric = (getattr(args, "metric_for_best_model", None) or "").removeprefix("eval_")
    if getattr(args, "load_best_model_at_end", False) and metric in LOWER_IS_BETTER and args.greater_is_better:
        raise UserError(f"--metric_for_best_model {args.metric_for_best_model} is lower-is-better: add "
                        "--greater_is_better false (else the worst checkpoint would be kept)")


def refuse_overwrite(path: str | os.PathLike | None, overwrite: bool, flag: str = "--overwrite") -> None:
    """The one rule for every output file a script writes: an existing ``path`` is an error naming it and
    ``flag``, unless ``overwrite``. ``None`` (no output asked for) passes.

    Raises:
        UserError: ``path`` exists and ``overwrite`` is false.
    """
    if path is not None and os.path.exists(path) and not overwrite:
        raise UserError(f"{os.fspath(path)} exists; pass {flag} to replace it, or choose another path")


def set_torch_threads(threads: int | None) -> None:
    """``--threads N``: torch's CPU threads (on a busy CPU, 1 is often fastest for small models); None keeps the
    default. Raises UserError for N < 1."""
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads must be ≥ 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def _debug_requested() -> bool:
    """``--debug`` anywhere on the command line (removed from ``sys.argv``) or ``MDLM_DEBUG=1``."""
    if "--debug" in sys.argv[1:]:
        sys.argv = [a for a in sys.argv if a != "--debug"]
        os.environ["MDLM_DEBUG"] = "1"
    return bool(os.environ.get("MDLM_DEBUG"))


def run_cli(main: Callable[[], Any]) -> Callable[[], None]:
    """Wrap a script's ``main``: a UserError / ValueError (input checks) or an OSError (a missing or
    unwritable file) or an unreadable safetensors file becomes one line ``error: ...`` on stderr and exit status 2 (pass ``--debug`` or set
    MDLM_DEBUG=1 for the traceback); Ctrl-C exits 130. An int returned by ``main`` is the exit status; anything else (e.g. the
    results an eval script also returns to Python callers) means success."""

    @functools.wraps(main)
    def wrapped() -> None:
        debug = _debug_requested()
        try:
            code = main()
        except (UserError, ValueError, OSError) as e:
            if debug:
                raise
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except Exception as e:  # a weight file safetensors cannot read, wherever it was opened
            if debug or type(e).__name__ != "SafetensorError":
                raise
            print(f"error: cannot read a .safetensors weight file (damaged or truncated?): {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    return wrapped


def _number_type(kind: type, name: str, ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = name
    return parse


# argparse ``type=`` checks: a bad value is one usage line naming the option (with :class:`ArgumentParser`)
positive_int = _number_type(int, "an integer", lambda v: v >= 1, "≥ 1")
non_negative_int = _number_type(int, "an integer", lambda v: v >= 0, "≥ 0")
positive_float = _number_type(float, "a number", lambda v: v > 0, "> 0")
non_negative_float = _number_type(float, "a number", lambda v: v >= 0, "≥ 0")
