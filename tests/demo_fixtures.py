"""Tiny random checkpoints for the demo tests, saved as a user's would be (``save_pretrained``): a text MDM with
its own byte-level BPE, and a class-conditional image MDM with a random 8×8 → 4×4 VQ inside it. Untrained,
so they say nothing about quality; they exercise loading, streaming and the UI. Each builds in < 1 s."""

from __future__ import annotations

from pathlib import Path

import torch

import mdlm  # noqa: F401  (registers the Auto classes)
from mdlm.data.images import ImageTokenLayout
from mdlm.generation_defaults import save_generation_defaults
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.pipelines.image import VQ_SUBDIR, image_config_fields
from mdlm.tokenizers.image import VQConfig, VQModelForImages
from mdlm.tokenizers.text import padded_vocab_size, train_bpe

CORPUS = ["the quick brown fox jumps over the lazy dog", "a word, a sense, a definition of it",
          "to be or not to be, that is the question", "all the world's a stage, and all the men and women"]
TEXT_DEFAULTS = {"steps": 8, "gen_length": 16, "temperature": 0.0, "remasking": "low_confidence"}
IMAGE_CLASSES = ["zero", "one", "two"]


def _tiny_config(vocab_size: int, context: int, **kw) -> MDLMConfig:
    return MDLMConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, max_position_embeddings=context, **kw)


def tiny_text_checkpoint(path: Path, context: int = 64, seed: int = 0) -> Path:
    """A random 2-layer text MDM + a 300-token BPE + sampler defaults (TEXT_DEFAULTS) in ``path``."""
    tok = train_bpe(CORPUS * 8, vocab_size=300)
    torch.manual_seed(seed)
    cfg = _tiny_config(padded_vocab_size(tok), context, mask_token_id=tok.mask_token_id,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    MDLMForMaskedLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    save_generation_defaults(str(path), {**TEXT_DEFAULTS, "mask_token_id": tok.mask_token_id,
                                         "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id})
    return path


def tiny_image_checkpoint(path: Path, codebook_size: int = 16, seed: int = 0) -> Path:
    """A random class-conditional image MDM (3 classes, 4×4 latent) with a random VQ in ``path/vq``."""
    torch.manual_seed(seed)
    vq = VQModelForImages(VQConfig(image_size=8, hidden_channels=[8], num_res_blocks=1, embedding_dim=4,
                                   codebook_size=codebook_size))
    layout = ImageTokenLayout(codebook_size, len(IMAGE_CLASSES))
    cfg = _tiny_config(layout.vocab_size, 1 + 4 * 4, mask_token_id=layout.mask_id)
    for k, v in image_config_fields(layout, (4, 4), IMAGE_CLASSES, "random", "none").items():
        setattr(cfg, k, v)
    MDLMForMaskedLM(cfg).save_pretrained(path)
    vq.save_pretrained(path / VQ_SUBDIR)
    save_generation_defaults(str(path), {"steps": 8, "temperature": 1.0, "cfg_scale": 0.0})
    return path
