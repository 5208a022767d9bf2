"""Command-line / YAML arguments of ``recipes/distill_parallel.py train`` (with transformers' TrainingArguments)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DistillArguments:
    base_model: str | None = field(default=None, metadata={"help": "the MDM checkpoint dir to distil (required)"})
    trajectories: str | None = field(default=None, metadata={
        "help": "dir written by `distill_parallel.py teacher` from the same model (required)"})
    block_length: int | None = field(default=None, metadata={
        "help": "semi-AR block of the mask = the decoder's block_length (default: the teacher's)"})
    entropy_weight: float = field(default=1.0, metadata={
        "help": "λ: weight of the entropy of correctly predicted positions (0 = plain trajectory distillation)"})
    certainty_temperature: float = field(default=0.5, metadata={
        "help": "T: the entropy is that of softmax(logits / T)"})
    eval_rows: int = field(default=128, metadata={"help": "trajectories held out for evaluation (the last ones)"})
    confident_threshold: float = field(default=0.9, metadata={
        "help": "evaluation: share of scored positions predicted right with p >= this (Fast-dLLM's threshold)"})
