"""Helpers shared by the training grids (text and image): loading a recipe as a module, releasing memory
between runs. (Each run's initial weights depend only on its --seed: the recipes seed before building the model.)"""

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


def free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
