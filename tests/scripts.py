"""Run a recipe's or eval script's ``main()`` inside the test process, exactly as ``python SCRIPT ARGS`` would,
without paying an interpreter start-up per call."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_script(rel: str):
    """The module of ``ROOT/rel`` (e.g. ``recipes/train_image.py``), loaded once and kept in ``sys.modules``
    (its dataclasses look their module up there)."""
    name = "script_" + Path(rel).with_suffix("").as_posix().replace("/", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / rel)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def run_main(monkeypatch, capsys, rel: str, *args: str, chdir: bool = False) -> tuple[int, str, str]:
    """``python rel args`` in-process → (exit status, stdout, stderr). The torch thread count a recipe sets
    (``--torch_num_threads``) is restored afterwards; ``chdir``: run from the repository root; without ``capsys``
    the output is not captured ("" returned for both)."""
    mod = load_script(rel)
    monkeypatch.setattr("sys.argv", [rel, *args])
    if chdir:
        monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as exit_info:
            mod.main()
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr() if capsys is not None else None
    return exit_info.value.code, out.out if out else "", out.err if out else ""
