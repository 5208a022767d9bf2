"""Noise control: what ``import mdlm`` turns off so that every command prints only what it is about.

* transformers' per-call "Loading weights" / "Writing model shards" bars (a bar on every generate,
  and escape codes in logs). Only transformers' own bars are turned off: the Trainer's training bar,
  ``datasets``' bars and hub download bars stay. ``MDLM_WEIGHT_BARS=1`` keeps them.
"""

from __future__ import annotations

import os


def quiet_weight_bars() -> None:
    """Turn off the bars transformers draws while loading or saving weights (``transformers.utils.logging.tqdm``)."""
    if os.environ.get("MDLM_WEIGHT_BARS") == "1":
        return
    from transformers.utils import logging as hf_logging

    if hasattr(hf_logging, "_tqdm_active"):  # transformers' switch alone (its public one also mutes hub downloads)
        hf_logging._tqdm_active = False
    else:  # pragma: no cover - another transformers layout
        hf_logging.disable_progress_bar()
