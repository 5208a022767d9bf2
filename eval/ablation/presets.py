"""The grids of eval/ablate.py: sampler strategies, the quick (CPU, minutes) and full presets, and the base
arguments of the training recipes (recipes/train_text.py, recipes/train_image.py)."""

from __future__ import annotations

import argparse
import os
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

STRATEGIES: dict[str, dict[str, Any]] = {
    "maskgit-confidence": dict(sampler="maskgit", remasking="low_confidence", confidence="prob"),
    "maskgit-random": dict(sampler="maskgit", remasking="random"),
    "moment": dict(sampler="moment", remasking="low_confidence", choice_temperature=1.0),
    # MaskGIT with the moment sampler's α = 1 held constant (not annealed): the sampler that Hayakawa et al. 2025
    # show the moment sampler approximates, so the two are compared at matched token temperature
    "maskgit-gumbel": dict(sampler="maskgit", remasking="low_confidence", confidence="prob", choice_temperature=1.0,
                           choice_anneal=False),
}
QUICK = dict(steps=[4, 16], schedules=["cosine", "linear"], num_samples=8, gen_length=32,
             train_schedules=["linear", "cosine"], train_weightings=["elbo", "maskgit"], train_t_min=[1e-3],
             train_steps=40, num_per_class=10, image_args="--max-reference 1000 --batch-size 250",
             image_grid_steps=[1, 8], image_grid_schedules=["cosine"],
             image_grid_strategies=["maskgit-confidence", "maskgit-random"], image_steps=[4],
             image_train_schedules=["exp"], image_train_weightings=["elbo", "maskgit"], image_train_t_min=[0.2],
             image_train_steps=60, image_train_eval_steps=[8])
FULL = dict(steps=[4, 8, 16, 32, 64], schedules=["cosine", "linear", "exp"], num_samples=64, gen_length=128,
            train_schedules=["linear", "cosine", "exp", "log-exp"], train_weightings=["elbo", "maskgit"],
            train_t_min=[1e-3, 0.1], train_steps=300, num_per_class=100, image_args="",
            image_grid_steps=[1, 4, 8, 16, 32], image_grid_schedules=["cosine", "linear", "exp"],
            image_grid_strategies=list(STRATEGIES), image_steps=[8, 16, 32],
            image_train_schedules=["linear", "cosine", "exp", "log-exp"], image_train_weightings=["elbo", "maskgit"],
            image_train_t_min=[1e-3, 0.2], image_train_steps=300, image_train_eval_steps=[8, 16])
QUICK_TRAIN_ARGS = (
    "--dataset shakespeare --tokenizer bpe --bpe_vocab_size 384 --max_train_documents 120 --seq_len 64 "
    "--hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --per_device_train_batch_size 16 "
    "--per_device_eval_batch_size 64 --max_eval_sequences 64 --eval_num_samples 4 --learning_rate 0.004 "
    "--warmup_steps 5 --logging_steps 10 --report_to none --use_cpu true --seed 0 --dataloader_num_workers 0"
)
FULL_TRAIN_ARGS = f"--config {os.path.join(ROOT, 'recipes', 'configs', 'shakespeare_tiny.yaml')} --eval_num_samples 4"
FORCED_TRAIN_ARGS = ["--save_strategy", "no", "--eval_strategy", "no", "--sample_on_end", "0", "--disable_tqdm", "true"]
# recipes/train_image.py: a 2-layer 64-wide MDM on 2000 Fashion-MNIST images (tokens from the VQ cache), seconds
QUICK_IMAGE_TRAIN_ARGS = (
    "--dataset fashion-mnist --max_train_samples 2000 --max_eval_samples 250 --hidden_size 64 --num_hidden_layers 2 "
    "--num_attention_heads 2 --per_device_train_batch_size 32 --per_device_eval_batch_size 250 --eval_num_samples 1 "
    "--learning_rate 0.003 --warmup_steps 2 --logging_steps 5 --cond_dropout 0.1 --report_to none --use_cpu true "
    "--seed 0 --dataloader_num_workers 0"
)
FULL_IMAGE_TRAIN_ARGS = f"--config {os.path.join(ROOT, 'recipes', 'configs', 'fmnist_mdm_tiny.yaml')} --warmup_steps 30"
FORCED_IMAGE_TRAIN_ARGS = FORCED_TRAIN_ARGS


def apply_preset(a: argparse.Namespace) -> None:
    """Every grid flag left unset (None) takes the quick or the full preset's value (``a.quick``)."""
    preset = QUICK if a.quick else FULL
    for k, v in preset.items():
        if getattr(a, k, None) is None:
            setattr(a, k, list(v) if isinstance(v, list) else v)
    if a.train_args is None:
        a.train_args = QUICK_TRAIN_ARGS if a.quick else FULL_TRAIN_ARGS
    if a.image_train_args is None:
        a.image_train_args = QUICK_IMAGE_TRAIN_ARGS if a.quick else FULL_IMAGE_TRAIN_ARGS
