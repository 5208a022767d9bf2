"""Argument dataclasses shared by the training recipes (parsed with ``HfArgumentParser``)."""

from __future__ import annotations

from dataclasses import dataclass, field


def check_positive(obj, *names: str, optional: tuple[str, ...] = ()) -> None:
    """ValueError naming the option when a size is not a positive integer (``optional`` ones may be None)."""
    for name in names + optional:
        v = getattr(obj, name)
        if v is None and name in optional:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"--{name} must be a positive integer, got {v!r}")


@dataclass
class ModelArguments:
    """The denoiser. ``model_name_or_path`` continues from a checkpoint; otherwise a new model of
    ``model_type`` is built: ``mdlm`` (this project's transformer) or any HF masked-LM type
    (``modernbert``, ``bert`` …) with ``model_config`` (JSON) passed to its config class."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "checkpoint dir to start from"})
    model_type: str = field(default="mdlm", metadata={"help": "mdlm, or an HF masked-LM type, e.g. modernbert"})
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    intermediate_size: int | None = field(default=None, metadata={"help": "default: 8/3·hidden rounded to 64"})
    max_position_embeddings: int | None = field(default=None, metadata={"help": "default: seq_len"})
    rope_theta: float = 10000.0
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa, eager, flash_attention_2"})
    model_config: str | None = field(default=None, metadata={"help": "JSON dict of extra config fields"})

    def __post_init__(self) -> None:
        check_positive(self, "hidden_size", "num_hidden_layers", "num_attention_heads",
                       optional=("num_key_value_heads", "intermediate_size", "max_position_embeddings"))
        if self.rope_theta <= 0:
            raise ValueError(f"--rope_theta must be positive, got {self.rope_theta}")


@dataclass
class DataArguments:
    dataset: str = field(
        default="shakespeare", metadata={"help": "shakespeare, bible, shakespeare+bible, a local file/dir, hub:NAME"}
    )
    tokenizer: str = field(default="gpt2", metadata={"help": "gpt2, bpe (train one on the corpus), or a local dir"})
    bpe_vocab_size: int = 2048
    seq_len: int = 256
    random_length_ratio: float = field(default=0.0, metadata={"help": "share of random-length sequences (LLaDA: 0.01)"})
    max_eval_sequences: int | None = field(default=None, metadata={"help": "cap on validation sequences"})
    max_train_documents: int | None = field(default=None, metadata={"help": "use only the first N documents"})

    def __post_init__(self) -> None:
        check_positive(self, "bpe_vocab_size", optional=("max_eval_sequences", "max_train_documents"))
        if isinstance(self.seq_len, bool) or not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ValueError(f"--seq_len must be an integer ≥ 2 (tokens per training sequence), got {self.seq_len!r}")
        if not 0.0 <= self.random_length_ratio <= 1.0:
            raise ValueError(f"--random_length_ratio must lie in [0, 1], got {self.random_length_ratio}")


@dataclass
class DiffusionArguments:
    """The MDM objective (see mdlm/loss.py, mdlm/masking.py)."""

    schedule: str = field(default="linear", metadata={"help": "linear, cosine, exp, log-exp, arccos, poly<p>"})
    weighting: str = field(default="elbo", metadata={"help": "elbo (w=γ'/γ) or maskgit (w=1)"})
    masking: str = field(default="mdm", metadata={"help": "mdm (independent) or maskgit (exact count)"})
    t_min: float = field(default=1e-3, metadata={"help": "train on t ∈ [t_min, 1]"})
    antithetic: bool = field(default=True, metadata={"help": "stratified t across the batch"})
    normalization: str = field(default="token", metadata={"help": "token or sequence"})
    cond_dropout: float = field(default=0.0, metadata={"help": "label dropout: condition → [MASK] (CFG)"})
    eval_num_samples: int = field(default=4, metadata={"help": "Monte-Carlo samples of the validation ELBO"})
    sample_on_end: int = field(default=3, metadata={"help": "print this many samples after training (text)"})

    def __post_init__(self) -> None:
        from ..loss import NORMALIZATIONS, WEIGHTINGS
        from ..schedules import get_schedule

        get_schedule(self.schedule)  # raises on an unknown name, listing the valid ones
        check_positive(self, "eval_num_samples")
        if self.sample_on_end < 0:
            raise ValueError(f"--sample_on_end must be ≥ 0, got {self.sample_on_end}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {self.weighting!r}; valid: {', '.join(WEIGHTINGS)}")
        if self.masking not in ("mdm", "maskgit"):
            raise ValueError(f"unknown masking {self.masking!r}; valid: mdm, maskgit")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
        if not 0.0 <= self.t_min < 1.0:
            raise ValueError(f"t_min must lie in [0, 1), got {self.t_min}")
        if not 0.0 <= self.cond_dropout <= 1.0:
            raise ValueError(f"cond_dropout must lie in [0, 1], got {self.cond_dropout}")
