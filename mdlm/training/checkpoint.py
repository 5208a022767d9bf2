"""Crash-safe checkpoint directories and the output-directory rules of the recipes.

A checkpoint is written under ``OUTPUT/.staging/`` and moved to ``OUTPUT/checkpoint-N`` by one
``rename`` once every file is on disk; the final model goes through the same staging and each file
is moved into ``OUTPUT/`` with ``os.replace``. So a crash or ``kill -9`` mid-save leaves at worst a
``.staging`` directory, which the next save removes and ``last_checkpoint`` never returns.
"""

from __future__ import annotations

import os
import re
import shutil

STAGING = ".staging"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(run_dir: str) -> list[str]:
    """Complete checkpoints of ``run_dir``, oldest first (by step)."""
    if not os.path.isdir(run_dir):
        return []
    found = [(int(m.group(1)), d) for d in os.listdir(run_dir) if (m := _CKPT.match(d))]
    return [os.path.join(run_dir, d) for _, d in sorted(found)]


def last_checkpoint(run_dir: str) -> str | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def publish_checkpoint(run_dir: str, name: str, save_total_limit: int | None) -> str:
    """Move ``run_dir/.staging/name`` to ``run_dir/name`` atomically, then drop the oldest beyond the limit."""
    src = os.path.join(run_dir, STAGING, name)
    dst = os.path.join(run_dir, name)
    if os.path.isdir(dst):  # the same step saved again: replace it only now that the new one is whole
        old = dst + ".old"
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    shutil.rmtree(os.path.join(run_dir, STAGING), ignore_errors=True)
    if save_total_limit and save_total_limit > 0:
        for old in list_checkpoints(run_dir)[:-save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return dst


def publish_files(staging_dir: str, out_dir: str) -> None:
    """Move every file of ``staging_dir`` into ``out_dir`` (each move atomic), then remove staging."""
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(staging_dir):
        src = os.path.join(staging_dir, name)
        if os.path.isfile(src):
            os.replace(src, os.path.join(out_dir, name))
    shutil.rmtree(staging_dir, ignore_errors=True)


RUN_MARKER = "mdlm_run.json"
# what a run writes into its output dir before its first checkpoint (removed when that start failed)
START_ARTEFACTS = (RUN_MARKER, "tokenizer", "vq", STAGING, ".final", ".tokenizer-staging", ".tokenizer-old", ".vq-staging")
# what a finished run leaves: a full model (sharded or not) or a LoRA adapter (recipes/sft_lora.py, adapt_ar.py)
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")


def read_marker(out_dir: str) -> dict | None:
    """The run marker of ``out_dir`` (fingerprint, recipe, ``finished``), or None."""
    import json

    path = os.path.join(out_dir, RUN_MARKER)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        raise ValueError(f"{path} is damaged; delete it if {out_dir} holds no run you want to keep") from None
    return marker if isinstance(marker, dict) else {}


def write_marker(out_dir: str, marker: dict) -> None:
    """Write the run marker atomically (temporary file, then one rename)."""
    import json

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, RUN_MARKER)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(marker, f)
    os.replace(tmp, path)


def saved_nothing(out_dir: str) -> bool:
    """True when ``out_dir`` holds no checkpoint and no final model: a run that failed before saving."""
    return not list_checkpoints(out_dir) and not any(os.path.exists(os.path.join(out_dir, w)) for w in _WEIGHTS)


def clear_failed_start(out_dir: str) -> None:
    """Remove what a run that saved nothing left behind (only the files a start writes)."""
    for name in START_ARTEFACTS:
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def check_output_dir(out_dir: str, resume: bool, run_fingerprint: str) -> str:
    """Refuse to write into a directory that holds something else; returns what it holds.

    ``"new"``: a missing or empty dir. ``"failed-start"``: a dir marked by an mdlm run that saved no
    checkpoint and no model (a start that failed, e.g. on bad input) — any settings may take it over.
    ``"same-run"``: with ``resume``, a dir whose ``mdlm_run.json`` names the same run fingerprint
    (recipe + model shape + data + objective). Anything else raises ValueError — nothing is overwritten
    without the user choosing another dir or deleting it.
    """
    if not os.path.exists(out_dir):
        return "new"
    if not os.path.isdir(out_dir):
        raise ValueError(f"output_dir {out_dir!r} exists and is not a directory")
    entries = [e for e in os.listdir(out_dir) if not e.startswith(".")]
    if not entries:
        return "new"
    marker = read_marker(out_dir)
    if marker is None:
        raise ValueError(
            f"output_dir {out_dir!r} is not empty and holds no mdlm run; choose another --output_dir"
        )
    if saved_nothing(out_dir):
        return "failed-start"
    if marker.get("fingerprint") != run_fingerprint:
        raise ValueError(
            f"output_dir {out_dir!r} holds another run (different model/data settings); choose another --output_dir"
        )
    if not resume:
        done = marker.get("finished")
        if isinstance(done, dict):
            raise ValueError(
                f"output_dir {out_dir!r} already holds this run, finished at step {done.get('global_step')}; choose "
                "another --output_dir (or pass --resume_from_checkpoint auto with a larger --max_steps to train further)"
            )
        raise ValueError(
            f"output_dir {out_dir!r} already holds this run; pass --resume_from_checkpoint auto to continue "
            "it, or choose another --output_dir"
        )
    return "same-run"


def checkpoint_step(ckpt: str) -> int:
    """The global step of a ``checkpoint-N`` directory (from its name)."""
    m = _CKPT.match(os.path.basename(os.path.normpath(ckpt)))
    if m:
        return int(m.group(1))
    import json

    with open(os.path.join(ckpt, "trainer_state.json"), encoding="utf-8") as f:
        return int(json.load(f)["global_step"])


def check_checkpoint(ckpt: str) -> None:
    """A checkpoint to resume from must hold whole safetensors weights and its trainer state; otherwise a
    ValueError names the damaged file and the previous checkpoint to use instead."""
    from ..weights import WeightsError, check_weights_dir, nonfinite_in_files

    deepspeed_only = any(d.startswith("global_step") for d in os.listdir(ckpt)) and not any(
        f.endswith(".safetensors") for f in os.listdir(ckpt))  # ZeRO-3 without gathered 16-bit weights
    try:
        if not deepspeed_only:
            check_weights_dir(ckpt, what="checkpoint")
        if not os.path.isfile(os.path.join(ckpt, "trainer_state.json")):
            raise WeightsError(f"checkpoint {ckpt} has no trainer_state.json")
        bad = [] if deepspeed_only else nonfinite_in_files(ckpt)
        if bad:  # written by an older version, or edited: never continue from NaN weights
            raise WeightsError(f"checkpoint {ckpt} holds non-finite weights ({', '.join(bad[:3])})")
    except WeightsError as e:
        step = checkpoint_step(ckpt) if _CKPT.match(os.path.basename(os.path.normpath(ckpt))) else None
        older = [c for c in list_checkpoints(os.path.dirname(os.path.normpath(ckpt)))
                 if step is not None and checkpoint_step(c) < step]
        alt = f"; resume from the previous one with --resume_from_checkpoint {older[-1]}" if older else ""
        raise ValueError(f"cannot resume: {e}{alt}") from None
