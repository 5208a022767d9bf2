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

    def __post_init__(self):
        if self.block_length is not None and self.block_length < 1:
            raise ValueError(f"--block_length must be >= 1 (or unset: the teacher's), got {self.block_length}")
        if self.entropy_weight < 0:
            raise ValueError(f"--entropy_weight must be >= 0, got {self.entropy_weight}")
        if self.certainty_temperature <= 0:
            raise ValueError(f"--certainty_temperature must be > 0, got {self.certainty_temperature}")
        if not 0 < self.confident_threshold <= 1:
            raise ValueError(f"--confident_threshold must be in (0, 1], got {self.confident_threshold}")
