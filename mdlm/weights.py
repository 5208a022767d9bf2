"""Weight files: safetensors only, whole, and finite.

Every place that loads or saves weights goes through these checks, so a bad file is one clear
error line instead of a traceback — or, worse, a model that silently prints empty text:

* :func:`check_weights_dir` — a model / adapter / VQ directory must hold safetensors weights that
  open (a truncated or empty file is named); a directory that holds only pickle weights
  (``pytorch_model.bin``, ``adapter_model.bin``, ``*.pt``) is refused with the command that converts it.
  Pickle can run arbitrary code when loaded, so it is never unpickled here.
* :func:`nonfinite_names` / :func:`check_finite_model` — a model whose weights hold NaN/inf is
  refused before generation, evaluation or a checkpoint save.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONVERT_HINT = (
    "convert it once, where you trust the file, with: python -c \"import mdlm, transformers; "
    "transformers.AutoModelForMaskedLM.from_pretrained('{d}', use_safetensors=False)"
    ".save_pretrained('{d}')\" (writes model.safetensors)"
)
ADAPTER_CONVERT_HINT = (
    "convert it once, where you trust the file, with: python -c \"import torch, safetensors.torch as s; "
    "s.save_file(torch.load('{d}/adapter_model.bin', weights_only=True), '{d}/adapter_model.safetensors')\""
)


class WeightsError(ValueError):
    """A weight file that cannot be used (pickle, truncated, empty, non-finite): one line for the user."""


def safetensors_files(directory: str) -> list[str]:
    """The ``*.safetensors`` files directly in ``directory``, sorted."""
    return sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))


def _pickle_files(directory: str) -> list[str]:
    skip = {"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth"}  # Trainer state
    return sorted(f for f in os.listdir(directory) if f.endswith(PICKLE_SUFFIXES) and f not in skip
                  and not f.startswith("rng_state"))


def check_safetensors_file(path: str) -> None:
    """Open ``path``'s header and check the file covers every tensor it declares (a truncated, empty or
    garbled file raises :class:`WeightsError` naming it)."""
    from safetensors import safe_open

    size = os.path.getsize(path)
    if size == 0:
        raise WeightsError(f"{path} is empty (0 bytes): an interrupted save or copy; restore it or use another checkpoint")
    try:
        with safe_open(path, framework="pt") as f:
            f.keys()
    except Exception as e:  # safetensors raises its own SafetensorError (not a ValueError)
        raise WeightsError(f"{path} is damaged or truncated ({size} bytes): {e}") from None


def check_weights_dir(directory: str, what: str = "model", adapter: bool = False) -> list[str]:
    """Validate the weights of ``directory`` (a model, ``adapter=True``: a peft adapter). Returns the
    safetensors files. Raises :class:`WeightsError` for pickle-only weights (with how to convert),
    no weights at all, or a damaged file."""
    if not os.path.isdir(directory):
        raise WeightsError(f"{what} directory {directory!r} does not exist")
    files = safetensors_files(directory)
    if not files:
        pickles = _pickle_files(directory)
        if pickles:
            hint = (ADAPTER_CONVERT_HINT if adapter else CONVERT_HINT).format(d=directory.rstrip("/"))
            raise WeightsError(
                f"{what} {directory} holds only pickle weights ({', '.join(pickles)}), which mdlm never loads "
                f"(unpickling can run code); {hint}"
            )
        raise WeightsError(f"{what} {directory} holds no weights (no *.safetensors file)")
    for name in files:
        check_safetensors_file(os.path.join(directory, name))
    return files


def nonfinite_names(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors of ``named`` that hold a NaN or ±inf (a ZeRO-3 parameter is
    checked on its local shard ``ds_tensor``)."""
    bad = []
    for name, t in named:
        t = getattr(t, "ds_tensor", t)
        if t is None or not torch.is_floating_point(t) or t.numel() == 0:
            continue
        if not bool(torch.isfinite(t.detach()).all()):
            bad.append(name)
    return bad


def nonfinite_in_files(directory: str) -> list[str]:
    """Names of the tensors of ``directory``'s safetensors files that hold NaN/inf (read one at a time)."""
    from safetensors import safe_open

    bad = []
    for name in safetensors_files(directory):
        with safe_open(os.path.join(directory, name), framework="pt") as f:
            bad += nonfinite_names((k, f.get_tensor(k)) for k in f.keys())
    return bad


def _describe(bad: list[str], total: int) -> str:
    shown = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
    return f"{len(bad)} of {total} tensors hold NaN/inf ({shown})"


def check_finite_model(model: torch.nn.Module, source: str) -> None:
    """Raise :class:`WeightsError` when any parameter or buffer of ``model`` (loaded from ``source``) is
    non-finite: such a model decodes to empty text or noise without any other sign."""
    named = list(model.named_parameters()) + list(model.named_buffers())
    bad = nonfinite_names(named)
    if bad:
        raise WeightsError(f"the weights in {source} are not finite: {_describe(bad, len(named))}; "
                           "this checkpoint is unusable (the training run diverged); use an earlier checkpoint")


def pytorch_default_init(module: torch.nn.Module) -> bool:
    """Re-initialise ``module`` as PyTorch's own constructors do (``PreTrainedModel._init_weights`` for conv nets):
    Conv / ConvTranspose / Linear weights Kaiming-uniform with a = √5, biases U(±1/√fan_in); BatchNorm / GroupNorm
    scale 1, shift 0. Through transformers' init helpers, which skip tensors already loaded from a checkpoint.
    Returns whether ``module`` was one of these kinds."""
    import math

    import torch.nn as nn

    try:  # transformers >= 5
        from transformers import initialization as init
    except ImportError:  # pragma: no cover - older transformers
        init = nn.init  # type: ignore[assignment]
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        if module.bias is not None:
            fan_in = nn.init._calculate_fan_in_and_fan_out(module.weight)[0]
            init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        return True
    if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
        init.ones_(module.weight)
        init.zeros_(module.bias)
        return True
    return False
