"""Noise: saving and loading a checkpoint draws no per-call weight bars, and loading a LoRA adapter raises
no warning (mdlm/quiet.py, mdlm/lora.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

import mdlm  # noqa: F401  (its import sets the noise policy)
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM


def _tiny():
    return MDLMForMaskedLM(MDLMConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=64, max_position_embeddings=16, mask_token_id=63))


def test_save_and_load_draw_no_weight_bars(tmp_path, capfd):
    _tiny().save_pretrained(tmp_path)
    MDLMForMaskedLM.from_pretrained(tmp_path)
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err and "\x1b[" not in err


def test_lora_wrap_and_load_raise_no_warning(tmp_path):
    from mdlm.lora import LoraArguments, apply_lora

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        model = apply_lora(_tiny(), LoraArguments(r=2, alpha=4))
    assert any("lora_" in n for n, _ in model.named_parameters())


@pytest.mark.requires("deepspeed")
def test_no_deepspeed_accelerator_guess_warning_without_cuda():
    code = "import mdlm, deepspeed; from deepspeed.accelerator import get_accelerator; print(get_accelerator().device_name())"
    env = {k: v for k, v in os.environ.items() if k != "DS_ACCELERATOR"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-1000:]
    if not torch.cuda.is_available():
        assert r.stdout.strip() == "cpu" and "unable to detect" not in r.stderr
