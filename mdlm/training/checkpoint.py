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


def check_output_dir(out_dir: str, resume: bool, run_fingerprint: str) -> None:
    """Refuse to write into a directory that holds something else.

    Allowed: a missing or empty dir; or, with ``resume``, a dir whose ``mdlm_run.json`` names the
    same run fingerprint (recipe + model shape + data). Anything else raises ValueError — nothing is
    overwritten without the user choosing another dir or deleting it.
    """
    import json

    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise ValueError(f"output_dir {out_dir!r} exists and is not a directory")
    entries = [e for e in os.listdir(out_dir) if not e.startswith(".")]
    if not entries:
        return
    marker = os.path.join(out_dir, RUN_MARKER)
    if not os.path.isfile(marker):
        raise ValueError(
            f"output_dir {out_dir!r} is not empty and holds no mdlm run; choose another --output_dir"
        )
    with open(marker, encoding="utf-8") as f:
        theirs = json.load(f).get("fingerprint")
    if theirs != run_fingerprint:
        raise ValueError(
            f"output_dir {out_dir!r} holds another run (different model/data settings); choose another --output_dir"
        )
    if not resume:
        raise ValueError(
            f"output_dir {out_dir!r} already holds this run; pass --resume_from_checkpoint auto to continue it, "
            "or choose another --output_dir"
        )
