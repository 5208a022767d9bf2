"""Arguments of the text-image mode of ``recipes/train_image.py`` (``--captions``), parsed with ``HfArgumentParser``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TextImageArguments:
    captions: bool = field(default=False, metadata={
        "help": "condition on captions too: [class] + caption tokens + codes in one vocabulary (mdlm.data.text_image)"})
    text_budget: int = field(default=16, metadata={"help": "caption slots (tokens); a longer caption is an error"})
    caption_vocab_size: int = field(default=1024, metadata={"help": "size of the byte-level BPE trained on the captions"})
    caption_tokenizer: str | None = field(default=None, metadata={
        "help": "reuse this tokenizer dir instead of training one (needs a [MASK] and a pad token)"})
    class_dropout: float = field(default=0.1, metadata={"help": "P(class slot alone → [MASK]) per training row"})
    caption_dropout: float = field(default=0.1, metadata={"help": "P(caption slots alone → [MASK]) per training row"})

    def __post_init__(self) -> None:
        if self.text_budget < 1 or self.caption_vocab_size < 300:
            raise ValueError(f"--text_budget must be ≥ 1 and --caption_vocab_size ≥ 300 (256 bytes + specials), got "
                             f"{self.text_budget}, {self.caption_vocab_size}")
        for name in ("class_dropout", "caption_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.class_dropout + self.caption_dropout > 1.0:
            raise ValueError("--class_dropout + --caption_dropout must be ≤ 1 (they are exclusive per row)")
