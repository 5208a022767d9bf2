"""LoRA instruction tuning (SFT) of a masked-diffusion LM, LLaDA-style (Nie et al. 2025, Sec. 2.3).

Each example is ``prompt ‖ response ‖ EOS…`` (``mdlm/data/sft.py``): the prompt is never masked and
never scored; response tokens (and the EOS padding after them, ``--pad_policy eos``) are masked with
the forward process and scored, the loss of a row normalised by its response length
(``--normalization sequence``, the default here). Only the LoRA adapter (``mdlm/lora.py``) trains.

Launch:

    # a base model first (a few CPU minutes): python recipes/train_text.py \\
    #     --config recipes/configs/shakespeare_tiny.yaml --output_dir runs/base_tiny
    # one process (CPU or one GPU), on the WordNet instruction set (define / synonym / sentence)
    python recipes/sft_lora.py --base_model runs/base_tiny --config recipes/configs/wordnet_lora_tiny.yaml
    # overrides: any --key of the config / LoRA / TrainingArguments
    python recipes/sft_lora.py --base_model runs/base_tiny --config recipes/configs/wordnet_lora_tiny.yaml \\
        --r 8 --alpha 16 --max_steps 100 --output_dir runs/wordnet_lora_r8
    # your own data: JSONL of {"prompt", "response"} or {"messages": [...]} per line
    python recipes/sft_lora.py --base_model DIR --config recipes/configs/wordnet_lora_tiny.yaml \\
        --data_files train.jsonl --eval_files heldout.jsonl --output_dir runs/my_sft
    # DeepSpeed, N GPUs (ZeRO-2 or ZeRO-3 configs in recipes/deepspeed/)
    deepspeed --num_gpus 2 recipes/sft_lora.py --base_model DIR --config recipes/configs/wordnet_lora_gpu.yaml \\
        --deepspeed recipes/deepspeed/zero2.json
    deepspeed --num_gpus 2 recipes/sft_lora.py --base_model DIR --config recipes/configs/wordnet_lora_gpu.yaml \\
        --deepspeed recipes/deepspeed/zero3.json
    # resume the newest complete checkpoint of --output_dir
    python recipes/sft_lora.py --base_model DIR --config ... --resume_from_checkpoint auto
    # merge the adapter into its base: a plain HF checkpoint (AutoModelForMaskedLM.from_pretrained)
    python recipes/sft_lora.py merge --adapter runs/wordnet_lora_tiny --out runs/wordnet_merged
    # chat with the result (an adapter dir works as --model)
    python recipes/generate.py --model runs/wordnet_lora_tiny --chat --prompt "Define ocean."

Writes ``output_dir/`` as an adapter dir: adapter_config.json (``base_model_name_or_path`` = the base's
absolute path), adapter_model.safetensors, tokenizer files, generation_config.json (chat sampler
defaults), mdlm_base_fingerprint.json (``load_adapter`` refuses another base) and eval_metrics.json.

Evaluation (``eval_nll``) is the response-only ELBO, nats per response token: held-out examples
(WordNet: held-out *words*) encoded as ``prompt ‖ response ‖ EOS`` with nothing after the EOS
(``--eval_pad_policy mask``), only response + EOS scored — LLaDA's conditional likelihood.
``eval/sft_eval.py`` compares base and tuned with the same numbers plus generations.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mdlm  # noqa: E402,F401  (registers the model with the Auto classes)
from mdlm.cli import UserError, parse_config_and_args, run_cli  # noqa: E402
from mdlm.data.wordnet import WORDNET_DIR  # noqa: E402
from mdlm.lora import LoraArguments  # noqa: E402
from mdlm.training import DiffusionArguments, MDMTrainer  # noqa: E402
from mdlm.training.run import run_recipe  # noqa: E402

EVAL_SELECT_SEED = 1234  # the held-out subset is the same for every run (comparable eval_nll)
DATA_CACHE_VERSION = 1


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


# ------------------------------------------------------------------------------------------ data
def _wordnet_cache_key(wordnet_dir: str, heldout_fraction: float) -> str:
    stats = []
    for name in sorted(os.listdir(wordnet_dir)):
        if name.startswith("data.") or name.endswith(".exc"):
            st = os.stat(os.path.join(wordnet_dir, name))
            stats.append((name, st.st_size, int(st.st_mtime)))
    blob = json.dumps([DATA_CACHE_VERSION, os.path.abspath(wordnet_dir), heldout_fraction, stats])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def wordnet_data(wordnet_dir: str = WORDNET_DIR, heldout_fraction: float = 0.05, cache_dir: str | None = None):
    """``build_wordnet_sft`` (train / heldout), cached on disk: building parses all of WordNet (about
    a minute); the cache is keyed by the files' sizes and mtimes and the held-out fraction."""
    from datasets import DatasetDict, load_from_disk

    from mdlm.data.wordnet import build_wordnet_sft

    if not os.path.isdir(wordnet_dir):
        raise ValueError(f"WordNet dir {wordnet_dir!r} does not exist (Debian: apt-get install wordnet-base)")
    root = cache_dir or os.environ.get("MDLM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mdlm")
    path = os.path.join(root, f"wordnet_sft-{_wordnet_cache_key(wordnet_dir, heldout_fraction)}")
    if os.path.isdir(path):
        return load_from_disk(path)
    data: DatasetDict = build_wordnet_sft(wordnet_dir, heldout_fraction=heldout_fraction)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        data.save_to_disk(tmp)
        os.replace(tmp, path)
    except OSError:  # read-only or raced: the data in memory is fine
        pass
    return load_from_disk(path) if os.path.isdir(path) else data


def select_eval(ds, n: int | None):
    """The fixed held-out subset scored by the recipe and by eval/sft_eval.py."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=EVAL_SELECT_SEED).select(range(n))


def raw_data(sargs: SFTArguments, seed: int):
    """(train, heldout) rows with prompt/response (or messages) columns, before tokenising."""
    from mdlm.data.sft import load_sft_jsonl

    if sargs.data_files:
        train = load_sft_jsonl(sargs.data_files)
        if sargs.eval_files:
            heldout = load_sft_jsonl(sargs.eval_files)
        elif len(train) >= 2 and sargs.eval_fraction > 0:
            n_eval = max(1, round(sargs.eval_fraction * len(train)))
            split = train.train_test_split(test_size=n_eval, seed=EVAL_SELECT_SEED, shuffle=True)
            train, heldout = split["train"], split["test"]
        else:
            heldout = None
    else:
        if sargs.eval_files:
            raise UserError("--eval_files needs --data_files (WordNet brings its own held-out words)")
        wn = wordnet_data(sargs.wordnet_dir, sargs.heldout_fraction, sargs.cache_dir)
        train, heldout = wn["train"], wn["heldout"]
    train = train.shuffle(seed=seed)
    if sargs.max_train_examples:
        train = train.select(range(min(len(train), sargs.max_train_examples)))
    if heldout is not None:
        heldout = select_eval(heldout, sargs.max_eval_examples)
    return train, heldout


def tokenize(rows, tok, sargs: SFTArguments, pad_policy: str, what: str, keep_columns=()):
    from mdlm.data.sft import tokenize_sft_dataset

    try:
        return tokenize_sft_dataset(
            rows, tok, max_length=sargs.max_length, pad_policy=pad_policy, padding="longest",
            truncate_prompt=sargs.truncate_prompt, keep_columns=keep_columns, num_proc=sargs.num_proc,
        )
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


@dataclass
class SFTData:
    train: object  # tokenised features (input_ids, attention_mask, prompt_mask, length, prompt_length)
    heldout: object | None  # tokenised with eval_pad_policy
    heldout_rows: object | None  # the same held-out examples before tokenising (prompt/response/...)
    collator: object  # SFTCollator(pad_policy): its ``eligible`` = response tokens = the loss region
    eval_collator: object  # SFTCollator(eval_pad_policy)


def build_data(sargs: SFTArguments, tok, seed: int = 0) -> SFTData:
    """Tokenised SFT features and the ``SFTCollator``s for training and held-out evaluation."""
    from mdlm.data.sft import SFTCollator

    rows_train, rows_eval = raw_data(sargs, seed)
    src = ", ".join(sargs.data_files) if sargs.data_files else "WordNet"
    train = tokenize(rows_train, tok, sargs, sargs.pad_policy, f"training data ({src})")
    heldout = None
    if rows_eval is not None:
        heldout = tokenize(rows_eval, tok, sargs, sargs.eval_pad_policy, "held-out data")
    return SFTData(train, heldout, rows_eval, SFTCollator.from_tokenizer(tok, sargs.pad_policy),
                   SFTCollator.from_tokenizer(tok, sargs.eval_pad_policy))


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
            import time

            self._t_log = time.perf_counter()
        self._tokens += int(inputs["input_ids"].numel())
        return super().training_step(model, inputs, *args, **kwargs)

    def log(self, logs: dict, *args, **kwargs) -> None:
        """Adds ``tokens_per_s`` (all ranks, positions of the padded batches) and, on GPU, the peak
        memory of this rank (``max_memory_gib``) to the training log records."""
        import time

        import torch

        now = time.perf_counter()
        if "loss" in logs and self._t_log is not None and self._tokens:
            logs["tokens_per_s"] = round(self._tokens * self.args.world_size / (now - self._t_log), 1)
            if torch.cuda.is_available():
                logs["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        if "loss" in logs:
            self._tokens, self._t_log = 0, now
        super().log(logs, *args, **kwargs)

    def get_eval_dataloader(self, eval_dataset=None):
        if self.eval_data_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        train_collator = self.data_collator
        self.data_collator = self.eval_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = train_collator


def _check_args(sargs: SFTArguments) -> None:
    if not sargs.base_model:
        raise UserError("--base_model DIR is required (a checkpoint of recipes/train_text.py, for example)")
    if not os.path.isdir(sargs.base_model):
        raise UserError(f"--base_model {sargs.base_model!r} is not a directory")
    for f in (sargs.data_files or []) + (sargs.eval_files or []):
        if not os.path.isfile(f):
            raise UserError(f"data file {f!r} does not exist")
    if not 0.0 <= sargs.eval_fraction < 1.0:
        raise UserError(f"--eval_fraction must lie in [0, 1), got {sargs.eval_fraction}")


def run_fingerprint(sargs: SFTArguments, largs: LoraArguments, diff: DiffusionArguments) -> str:
    """What makes two runs "the same run" for resuming: base, data, adapter shape and objective."""
    cfg_path = os.path.join(sargs.base_model, "config.json")
    base_cfg = open(cfg_path, encoding="utf-8").read() if os.path.isfile(cfg_path) else ""
    skip_s = {"max_eval_examples", "cache_dir", "num_proc", "gen_length", "gen_block_length", "eval_pad_policy"}
    blob = json.dumps(
        {"base": [os.path.abspath(sargs.base_model), hashlib.sha256(base_cfg.encode()).hexdigest()],
         "sft": {k: v for k, v in asdict(sargs).items() if k not in skip_s},
         "lora": asdict(largs),
         "diffusion": {k: v for k, v in asdict(diff).items() if k not in ("eval_num_samples", "sample_on_end")}},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------- train
def train(argv: list[str] | None = None, callbacks: tuple = ()) -> MDMTrainer:
    """The whole recipe; returns the trainer (tests drive it in-process). Raises on bad input."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, TrainingArguments

    from mdlm.lora import apply_lora, count_parameters, set_base_path, write_fingerprint
    from mdlm.training.build import check_model_fits
    from mdlm.training.run import finish_run, prepare_run, train_from

    sargs, largs, diff, targs = parse_config_and_args(
        (SFTArguments, LoraArguments, SFTDiffusionArguments, TrainingArguments), argv
    )
    _check_args(sargs)
    base_dir = os.path.abspath(sargs.base_model)
    tok = AutoTokenizer.from_pretrained(base_dir)
    if tok.mask_token_id is None:
        raise UserError(f"the tokenizer of {base_dir} has no [MASK] token")
    # data first: a malformed file or a too-long prompt fails before any model is loaded
    data = build_data(sargs, tok, seed=targs.seed)
    train_ds, eval_ds = data.train, data.heldout
    resume = prepare_run(targs, run_fingerprint(sargs, largs, diff), recipe="sft_lora")

    base = AutoModelForMaskedLM.from_pretrained(base_dir, use_safetensors=True)
    check_model_fits(base, tok, sargs.max_length)
    model = apply_lora(base, largs, tok)
    set_base_path(model, base_dir)
    if targs.should_save:
        write_fingerprint(targs.output_dir, model.mdlm_base_fingerprint)
    n_train, n_total = count_parameters(model)
    if targs.process_index == 0:
        n_eval = len(eval_ds) if eval_ds is not None else 0
        print(
            f"LoRA r={largs.r} alpha={largs.alpha:g} on {', '.join(largs.target_modules)}: "
            f"{n_train / 1e3:.1f}K trainable of {n_total / 1e6:.2f}M parameters ({100 * n_train / n_total:.2f}%) | "
            f"train {len(train_ds)} examples | held-out {n_eval} | normalization {diff.normalization}",
            flush=True,
        )
    targs.remove_unused_columns = False
    targs.label_names = []
    if eval_ds is None and targs.eval_strategy != "no":
        targs.eval_strategy = "no"
    trainer = SFTTrainer(
        model=model,
        args=targs,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=data.collator,
        eval_data_collator=data.eval_collator,
        processing_class=tok,
        diffusion_args=diff,
        mask_token_id=tok.mask_token_id,
        callbacks=list(callbacks),
    )
    train_from(trainer, resume)  # never one step past max_steps when resuming a completed checkpoint
    metrics = trainer.evaluate() if eval_ds is not None else {}
    defaults = chat_generation_defaults(tok, sargs.gen_length, sargs.gen_block_length)
    finish_run(trainer, tok, metrics, defaults)
    if diff.sample_on_end and targs.world_size == 1 and eval_ds is not None:
        print_samples(trainer.model, tok, defaults, data.heldout_rows, diff.sample_on_end, targs.seed)
    return trainer


def row_prompt(row) -> str:
    """The user prompt of a row (prompt/response or messages)."""
    if "messages" in row and row["messages"]:
        return [m for m in row["messages"] if m["role"] == "user"][-1]["content"]
    return row["prompt"]


def print_samples(model, tok, defaults: dict, rows, n: int, seed: int) -> None:
    """A few held-out prompts answered by the tuned model (chat format, the adapter's defaults)."""
    from mdlm.pipelines.text import generate_text, sampler_config_from

    rows = rows.select(range(min(n, len(rows))))
    prompts = [row_prompt(r) for r in rows]
    config, gen_length = sampler_config_from(defaults, {})
    was = model.training
    model.eval()
    texts, out = generate_text(model, tok, prompts, config, gen_length, seed=seed, chat=True)
    model.train(was)
    for p, t in zip(prompts, texts):
        print(f"--- {p!r} ({config.steps} steps, {gen_length} tokens)\n{t}", flush=True)


# ----------------------------------------------------------------------------------------- merge
def merge(argv: list[str] | None = None) -> str:
    """``merge --adapter DIR --out DIR [--base DIR] [--dtype float32|bfloat16|float16]``."""
    import argparse

    import torch

    from mdlm.lora import merge_adapter

    p = argparse.ArgumentParser(prog="sft_lora.py merge", description="merge a LoRA adapter into its base")
    p.add_argument("--adapter", required=True, help="adapter dir written by this recipe")
    p.add_argument("--out", required=True, help="new checkpoint dir (must be missing or empty)")
    p.add_argument("--base", help="base dir (default: adapter_config.json's base_model_name_or_path)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    a = p.parse_args(argv)
    if not os.path.isdir(a.adapter):
        raise UserError(f"--adapter {a.adapter!r} is not a directory")
    out = merge_adapter(a.adapter, a.out, base_dir=a.base, dtype=getattr(torch, a.dtype) if a.dtype else None)
    print(f"merged {a.adapter} into its base: {out}", flush=True)
    return out


@run_cli
def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "merge":
        merge(argv[1:])
        return 0
    return run_recipe(train, argv)


if __name__ == "__main__":
    main()
