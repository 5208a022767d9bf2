"""End-to-end helpers on top of the sampler: load a checkpoint (or LoRA adapter) and generate."""

from .loading import load_for_generation
from .text import build_text_canvas, generate_text, generate_text_batches

__all__ = ["load_for_generation", "build_text_canvas", "generate_text", "generate_text_batches"]
