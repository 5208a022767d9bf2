"""Argument dataclasses of the image MDM recipe (``recipes/train_image.py``), parsed with ``HfArgumentParser``."""

from __future__ import annotations

from dataclasses import dataclass, field

from .args import DiffusionArguments, check_positive


@dataclass
class ImageDataArguments:
    vq_model: str | None = field(default=None, metadata={"help": "VQ tokenizer dir (train_vq.py output or diffusers VQModel)"})
    dataset: str = field(default="fashion-mnist", metadata={"help": "fashion-mnist, digits, or imagefolder:PATH"})
    data_dir: str | None = field(default=None, metadata={"help": "Fashion-MNIST IDX dir (default: $MDLM_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)"})
    image_size: int | None = field(default=None, metadata={"help": "image folders: resize to this (default 28)"})
    channels: int = field(default=1, metadata={"help": "image folders: 1 (grayscale) or 3 (RGB)"})
    max_train_samples: int | None = field(default=None, metadata={"help": "train on N images of the first --dataset (a seeded random draw; the sets added after it stay whole)"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "validation ELBO on N test images (a seeded random draw)"})
    cache_dir: str | None = field(default=None, metadata={"help": "token-dataset cache (default ~/.cache/mdlm/image_tokens; 'none' = off)"})
    encode_batch_size: int = 1024
    torch_num_threads: int | None = field(default=None, metadata={"help": "CPU threads for torch"})

    def __post_init__(self) -> None:
        check_positive(self, "encode_batch_size",
                       optional=("image_size", "max_train_samples", "max_eval_samples", "torch_num_threads"))
        if self.channels not in (1, 3):
            raise ValueError(f"--channels must be 1 or 3, got {self.channels}")


@dataclass
class ImageDiffusionArguments(DiffusionArguments):
    cond_dropout: float = field(default=0.1, metadata={"help": "label dropout: class token → [MASK] (CFG)"})
    sample_on_end: int = field(default=8, metadata={"help": "write samples.png with this many images per class"})


@dataclass
class BudgetArguments:
    max_train_seconds: float | None = field(
        default=None, metadata={"help": "stop training after this many seconds (then the final save/eval run as usual)"}
    )

    def __post_init__(self) -> None:
        if self.max_train_seconds is not None and self.max_train_seconds <= 0:
            raise ValueError(f"--max_train_seconds must be positive, got {self.max_train_seconds}")
