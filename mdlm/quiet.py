"""Noise control: what ``import mdlm`` turns off so that every command prints only what it is about.

* transformers' per-call "Loading weights" / "Writing model shards" bars (a bar on every generate,
  and escape codes in logs). Only transformers' own bars are turned off: the Trainer's training bar,
  ``datasets``' bars and hub download bars stay. ``MDLM_WEIGHT_BARS=1`` keeps them.
* DeepSpeed's "Setting accelerator to CPU ... we were unable to detect it" warning, printed by every
  Trainer run on a machine without CUDA (transformers imports DeepSpeed when it is installed): where
  there is no CUDA device, ``DS_ACCELERATOR=cpu`` tells DeepSpeed the answer it would have guessed.
  A ``DS_ACCELERATOR`` the user set is kept.
"""

from __future__ import annotations

import os


def quiet_deepspeed_cpu_guess() -> None:
    """``DS_ACCELERATOR=cpu`` on a machine without CUDA, unless the user set it."""
    if "DS_ACCELERATOR" in os.environ:
        return
    import torch

    if not torch.cuda.is_available():
        os.environ["DS_ACCELERATOR"] = "cpu"


def quiet_weight_bars() -> None:
    """Turn off the bars transformers draws while loading or saving weights (``transformers.utils.logging.tqdm``)."""
    if os.environ.get("MDLM_WEIGHT_BARS") == "1":
        return
    from transformers.utils import logging as hf_logging

    if hasattr(hf_logging, "_tqdm_active"):  # transformers' switch alone (its public one also mutes hub downloads)
        hf_logging._tqdm_active = False
    else:  # pragma: no cover - another transformers layout
        hf_logging.disable_progress_bar()
