"""LoRA instruction tuning (SFT) of a masked-diffusion LM, LLaDA-style (Nie et al. 2025, Sec. 2.3): the
Trainer (held-out batches through their own collator, tokens/s and step in every log record), the chat
sampler defaults an adapter is saved with, and the end-of-run samples. ``recipes/sft_lora.py`` drives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..data.wordnet import WORDNET_DIR
from .args import DiffusionArguments
from .trainer import MDMTrainer


@dataclass
class SFTArguments:
    base_model: str | None = field(default=None, metadata={"help": "base checkpoint dir (required)"})
    data_files: list[str] | None = field(default=None, metadata={"help": "SFT JSONL file(s); default: WordNet"})
    eval_files: list[str] | None = field(default=None, metadata={"help": "held-out JSONL; default: split of data_files"})
    eval_fraction: float = field(default=0.05, metadata={"help": "share of data_files held out without eval_files"})
    wordnet_dir: str = field(default=WORDNET_DIR, metadata={"help": "WordNet 3.0 data.* files"})
    heldout_fraction: float = field(default=0.05, metadata={"help": "WordNet: share of words held out"})
    cache_dir: str | None = field(default=None, metadata={"help": "built-WordNet cache (default ~/.cache/mdlm)"})
    max_train_examples: int | None = field(default=None, metadata={"help": "use a random subset of this size"})
    max_eval_examples: int | None = field(default=512, metadata={"help": "held-out examples scored (fixed subset)"})
    max_length: int = field(default=128, metadata={"help": "prompt + response tokens per example"})
    pad_policy: str = field(default="eos", metadata={"help": "eos (LLaDA: EOS padding is scored) or mask"})
    response_length: int | None = field(default=None, metadata={
        "help": "with pad_policy eos: give every training row a response canvas of exactly this many positions "
                "(answer, then EOS), as decoding with gen_length = this sees it (unset: pad to the batch's longest)"})
    eval_pad_policy: str = field(default="mask", metadata={"help": "mask: score response + one EOS only"})
    truncate_prompt: str = field(default="error", metadata={"help": "error or left (keep the prompt's tail)"})
    num_proc: int | None = field(default=None, metadata={"help": "processes for tokenising"})
    gen_length: int = field(default=64, metadata={"help": "chat default: tokens generated per answer"})
    gen_block_length: int = field(default=32, metadata={"help": "chat default: semi-autoregressive block"})


@dataclass
class SFTDiffusionArguments(DiffusionArguments):
    """DiffusionArguments with SFT defaults: loss normalised per sequence (by response length)."""

    normalization: str = field(default="sequence", metadata={"help": "sequence (LLaDA SFT) or token"})
    sample_on_end: int = field(default=3, metadata={"help": "print this many held-out chat generations"})


def chat_generation_defaults(tok, gen_length: int, block_length: int) -> dict:
    """Sampler defaults of the adapter's generation_config.json (LLaDA's instruct decoding: greedy,
    low-confidence remasking, even split, one token per step, semi-autoregressive blocks)."""
    return {
        "mask_token_id": tok.mask_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "steps": gen_length,
        "gen_length": gen_length,
        "block_length": min(block_length, gen_length),
        "temperature": 0.0,
        "remasking": "low_confidence",
        "confidence": "prob",
        "schedule": "even",
        "stop_at_eos": True,
        "chat": True,
    }


class SFTTrainer(MDMTrainer):
    """MDMTrainer whose evaluation batches use their own collator (``eval_pad_policy``)."""

    def __init__(self, *args, eval_data_collator=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self._tokens = 0  # canvas positions (prompt + response + padding) trained on since the last log
        self._t_log: float | None = None

    def training_step(self, model, inputs, *args, **kwargs):
        if self._t_log is None:
            self._t_log = time.perf_counter()
        self._tokens += int(inputs["input_ids"].numel())
        return super().training_step(model, inputs, *args, **kwargs)

    def log(self, logs: dict, *args, **kwargs) -> None:
        """Adds ``tokens_per_s`` (all ranks, positions of the padded batches) and, on GPU, the peak
        memory of this rank (``max_memory_gib``) to the training log records, and the step to the
        printed line (the log history has it already)."""
        now = time.perf_counter()
        if "loss" in logs and self._t_log is not None and self._tokens:
            logs["tokens_per_s"] = round(self._tokens * self.args.world_size / (now - self._t_log), 1)
            if torch.cuda.is_available():
                logs["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        if "loss" in logs:
            self._tokens, self._t_log = 0, now
        super().log({"step": self.state.global_step, **logs}, *args, **kwargs)

    def get_eval_dataloader(self, eval_dataset=None):
        if self.eval_data_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        train_collator = self.data_collator
        self.data_collator = self.eval_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = train_collator


def row_prompt(row) -> str:
    """The user prompt of a row (prompt/response or messages)."""
    if "messages" in row and row["messages"]:
        return [m for m in row["messages"] if m["role"] == "user"][-1]["content"]
    return row["prompt"]


def first_prompts(rows, n: int) -> tuple[str, ...]:
    """The user prompts of the first ``n`` rows."""
    return tuple(row_prompt(r) for r in rows.select(range(min(n, len(rows)))))


def print_samples(model, tok, defaults: dict, rows, n: int, seed: int) -> None:
    """A few held-out prompts answered by the tuned model (chat format, the adapter's defaults)."""
    from ..pipelines.text import generate_text, sampler_config_from

    prompts = list(first_prompts(rows, n))
    config, gen_length = sampler_config_from(defaults, {})
    was = model.training
    model.eval()
    texts, out = generate_text(model, tok, prompts, config, gen_length, seed=seed, chat=True)
    model.train(was)
    for p, t in zip(prompts, texts):
        shown = t if t.strip() else "(blank: nothing but whitespace before the first EOS)"
        print(f"--- {p!r} ({config.steps} steps, {gen_length} tokens)\n{shown}", flush=True)
