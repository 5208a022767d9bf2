"""Helpers shared by the training grids (text and image): loading a recipe as a module, seeding the process
before each run, releasing memory between runs."""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

from .presets import ROOT


def load_recipe(name: str = "train_text"):
    """recipes/<name>.py as a module (registered in sys.modules: its dataclasses look their module up)."""
    mod_name = f"{name}_recipe"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, os.path.join(ROOT, "recipes", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU + CUDA) before a training run: the recipes build the model
    before the Trainer seeds, so without this a run's initial weights depend on what ran before it."""
    from transformers import set_seed

    set_seed(seed)


def free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
