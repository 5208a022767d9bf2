"""Training: argument dataclasses, collator, the MDM Trainer and crash-safe checkpoints."""

from .args import DataArguments, DiffusionArguments, ModelArguments
from .collator import MDMCollator
from .trainer import MDMTrainer, NonFiniteError, NonFiniteLossError

__all__ = ["DataArguments", "DiffusionArguments", "MDMCollator", "MDMTrainer", "ModelArguments", "NonFiniteError", "NonFiniteLossError"]
