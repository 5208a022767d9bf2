"""Arguments of ``recipes/adapt_ar.py`` (parsed with the project's ``HfArgumentParser`` next to ``LoraArguments``,
``DiffusionArguments`` and ``TrainingArguments``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..modeling.causal_backbone import ALIGNMENTS
from .source import DEFAULT_MASK_TOKEN


@dataclass
class AdaptArguments:
    """Where the causal LM comes from, how it becomes an MDM, what it trains on."""

    source: str | None = field(default=None, metadata={"help": "local dir of an HF causal LM (or the dir holding --gguf_file)"})
    gguf_file: str | None = field(default=None, metadata={"help": "a GGUF file inside --source (needs the gguf package)"})
    random_config: str | None = field(
        default=None, metadata={"help": "instead of --source: JSON config of a NEW random causal LM, e.g. "
                                '\'{"model_type": "llama", "hidden_size": 32, ...}\' (tests, CPU smoke runs)'})
    tokenizer: str = field(default="gpt2", metadata={"help": "with --random_config: gpt2, or a tokenizer dir"})
    logit_alignment: str = field(default="dream", metadata={"help": f"{' or '.join(ALIGNMENTS)}: position i (llada) or "
                                                            "i-1 (dream, shifted) predicts token i"})
    shift_token: str | None = field(default=None, metadata={"help": "separator before token 0 (dream) and the AR "
                                                            "reference's context; default: the tokenizer's BOS, else EOS"})
    mask_token: str = field(default=DEFAULT_MASK_TOKEN, metadata={"help": "[MASK] token added when the tokenizer has none"})
    allow_resize: bool = field(default=True, metadata={"help": "grow the embedding by a row for [MASK] when it has no spare row"})
    data: str = field(default="wiki", metadata={"help": "corpora (wiki, gcide, fortunes, bible, shakespeare; '+' joins) "
                                                "or a packed .npz from --prepare_data"})
    eval_splits: str = field(default="validation", metadata={"help": "comma-separated eval splits (npz array names)"})
    seq_len: int = 512
    max_eval_rows: int = field(default=64, metadata={"help": "rows of each eval split scored (ELBO and AR reference)"})
    lora: bool = field(default=True, metadata={"help": "adapt with LoRA (+ the [MASK] row); false = full fine-tuning"})
    train_mask_row: bool = field(default=True, metadata={"help": "with lora: train the [MASK] embedding row too"})
    full_scope: str = field(default="all", metadata={
        "help": "with --lora false: all (every weight) or projections (only the LoRA target projections and the "
                "[MASK] row, so the result can travel as a LoRA extraction: recipes/extract_lora.py)"})
    attention_anneal_steps: int = field(default=0, metadata={
        "help": "DiffuLLaMA's attention-mask annealing: open the causal mask's upper triangle linearly over the first "
                "N optimizer steps (each entry with probability step/N, redrawn every forward); 0 = bidirectional "
                "from the start"})
    regional_compile: bool = field(default=False, metadata={
        "help": "with --torch_compile true: compile one decoder layer and reuse it for every layer (accelerate's "
                "regional compilation, ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION=1) instead of the whole model in one "
                "graph. SmolLM2-135M on one H200: 261k tokens/s against 143k whole-model (docs/backbones.md)"})
    dtype: str = field(default="float32", metadata={"help": "weights' dtype (float32 master weights; bf16 via --bf16)"})
    time_budget_s: float = field(default=0.0, metadata={"help": "stop training after this many seconds (0 = off)"})
    results_json: str | None = field(default=None, metadata={"help": "write the curve, AR reference and speed here"})
    base_only: bool = field(default=False, metadata={"help": "write the un-trained MDM (the adapter's base) and stop"})
    prepare_data: str | None = field(default=None, metadata={"help": "tokenise --data into this .npz and stop"})
    prepare_max_tokens: str | None = field(default=None, metadata={"help": "with --prepare_data: JSON {corpus: max train "
                                                                   "tokens}, e.g. '{\"gcide\": 3000000}'"})

    def __post_init__(self) -> None:
        if self.logit_alignment not in ALIGNMENTS:
            raise ValueError(f"logit_alignment must be one of {', '.join(ALIGNMENTS)}, got {self.logit_alignment!r}")
        if self.seq_len < 2:
            raise ValueError(f"seq_len must be ≥ 2, got {self.seq_len}")
        if self.full_scope not in ("all", "projections"):
            raise ValueError(f"full_scope must be all or projections, got {self.full_scope!r}")
        if self.attention_anneal_steps < 0:
            raise ValueError(f"attention_anneal_steps must be ≥ 0, got {self.attention_anneal_steps}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
