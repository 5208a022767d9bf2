"""A DeepSpeed ZeRO checkpoint (any stage, any number of ranks) → a plain transformers checkpoint that resumes
on any world size, one GPU or the CPU, with or without DeepSpeed — weights AND Adam state.

DeepSpeed's own tool does the un-sharding: ``deepspeed.checkpoint.ds_to_universal`` turns the rank shards of
``checkpoint-N/global_stepN/`` into one fp32 master tensor, ``exp_avg`` and ``exp_avg_sq`` per parameter (its
"universal checkpoint", ``zero/<name>/{fp32,exp_avg,exp_avg_sq}.pt``). This module only re-packs those tensors
into what ``transformers.Trainer`` reads on ``--resume_from_checkpoint``: ``model.safetensors`` (the fp32 master
weights, not the 16-bit copy) and ``optimizer.pt`` (a ``torch.optim.AdamW`` state dict whose two parameter groups
— decay / no decay — are built by the Trainer's own ``get_decay_parameter_names``). The scheduler state, trainer
state, RNG states, config and tokenizer files are copied unchanged.

A 16-bit-only conversion (``zero_to_fp32`` / ``get_fp32_state_dict_from_zero_checkpoint``) gives the weights
but restarts Adam from zero moments: the loss then jumps; see ``docs/training_at_scale.md`` for the measured
difference.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import torch

COPIED = ("config.json", "trainer_state.json", "scheduler.pt", "training_args.json", "tokenizer.json",
          "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "generation_config.json")


def zero_step_dir(ckpt: str) -> str:
    """The ``global_stepN`` folder named by ``ckpt/latest``; ValueError naming what is missing otherwise."""
    if not os.path.isdir(ckpt):
        raise ValueError(f"{ckpt} is not a directory")
    latest = os.path.join(ckpt, "latest")
    if not os.path.isfile(latest):
        raise ValueError(f"{ckpt} is not a DeepSpeed checkpoint (no 'latest' file; a plain checkpoint resumes as is)")
    with open(latest, encoding="utf-8") as f:
        tag = f.read().strip()
    step_dir = os.path.join(ckpt, tag)
    if not os.path.isdir(step_dir) or not any(n.endswith("optim_states.pt") for n in os.listdir(step_dir)):
        raise ValueError(f"{ckpt}: 'latest' names {tag!r} but {step_dir} holds no *_optim_states.pt shards")
    for need in ("config.json", "trainer_state.json"):
        if not os.path.isfile(os.path.join(ckpt, need)):
            raise ValueError(f"{ckpt} has no {need}: not a checkpoint of a transformers Trainer run")
    return step_dir


def to_universal(step_dir: str, out: str, workers: int | None = None) -> str:
    """Run DeepSpeed's ``ds_to_universal`` on ``step_dir`` into ``out`` (``workers`` processes, default
    min(4, CPUs)); returns ``out/zero``."""
    n = str(workers or min(4, os.cpu_count() or 1))
    cmd = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", step_dir,
           "--output_folder", out, "--num_extract_workers", n, "--num_merge_workers", n, "--inject_missing_state"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ValueError(f"DeepSpeed's ds_to_universal failed on {step_dir}: {tail[0]}")
    return os.path.join(out, "zero")


def _tensor(path: str) -> torch.Tensor:
    t = torch.load(path, map_location="cpu", weights_only=True)  # a plain tensor (or {'param': tensor})
    t = t["param"] if isinstance(t, dict) else t
    return t.detach().float().contiguous()


def read_universal(zero_dir: str, names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    """``{name: {'fp32', 'exp_avg', 'exp_avg_sq'}}`` for every trainable parameter name; ValueError when the
    checkpoint's parameters differ from the model's."""
    have = set(os.listdir(zero_dir)) - {"optimizer_state.pt"}
    if have != set(names):
        miss, extra = sorted(set(names) - have), sorted(have - set(names))
        raise ValueError(f"the ZeRO checkpoint does not match its config.json model: missing {miss[:3]}, extra {extra[:3]}")
    return {n: {k: _tensor(os.path.join(zero_dir, n, f"{k}.pt")) for k in ("fp32", "exp_avg", "exp_avg_sq")}
            for n in names}


def trainer_param_groups(model) -> list[list[str]]:
    """The two parameter groups ``transformers.Trainer.create_optimizer`` builds (weight decay, no decay), as
    names in ``model.named_parameters()`` order — the order ``optimizer.pt`` indexes them in."""
    from transformers import Trainer

    decay = set(Trainer.get_decay_parameter_names(None, model))  # uses no Trainer state
    named = [n for n, p in model.named_parameters() if p.requires_grad]
    return [[n for n in named if n in decay], [n for n in named if n not in decay]]


def adamw_state_dict(groups: list[list[str]], states: dict, step: int, hyper: list[dict],
                     shapes: dict[str, tuple[int, ...]] | None = None) -> dict:
    """A ``torch.optim.AdamW.state_dict()`` for ``groups`` (parameter names per group) from per-name moments.

    Args:
        groups: names per parameter group, in the optimizer's order.
        states: ``{name: {'exp_avg': (shape), 'exp_avg_sq': (shape), 'fp32': (shape)}}``.
        step: the optimizer steps taken (Adam's bias correction, Kingma & Ba 2015, Alg. 1).
        hyper: per group, the hyper-parameters (lr, betas, eps, weight_decay, ...).
        shapes: the parameters' shapes by name. A ZeRO-3 universal checkpoint stores each moment flattened; the
            optimizer needs them in the parameter's shape (a CUDA fused AdamW refuses a flat moment for a 2-D
            parameter; the CPU kernel silently accepts it). Default: the shape of ``states[name]['fp32']``.
    """
    state, out_groups, i = {}, [], 0
    for names, h in zip(groups, hyper):
        idx = []
        for n in names:
            s = states[n]
            shape = tuple(shapes[n]) if shapes is not None else tuple(s["fp32"].shape)
            for k in ("exp_avg", "exp_avg_sq"):
                if s[k].numel() != math.prod(shape):
                    raise ValueError(f"{n}: {k} holds {s[k].numel()} values, the parameter {math.prod(shape)} {shape}")
            state[i] = {"step": torch.tensor(float(step)), "exp_avg": s["exp_avg"].reshape(shape).clone(),
                        "exp_avg_sq": s["exp_avg_sq"].reshape(shape).clone()}
            idx.append(i)
            i += 1
        out_groups.append({**h, "params": idx})
    return {"state": state, "param_groups": out_groups}


def group_hyper(ckpt: str, n_groups: int) -> list[dict]:
    """AdamW hyper-parameters per group from ``training_args.json`` and the current lr from ``scheduler.pt``."""
    path = os.path.join(ckpt, "training_args.json")
    if not os.path.isfile(path):
        raise ValueError(f"{ckpt} has no training_args.json (the optimizer settings to resume with)")
    with open(path, encoding="utf-8") as f:
        a = json.load(f)
    if not str(a.get("optim", "")).startswith("adamw_torch"):
        raise ValueError(f"the run used --optim {a.get('optim')}; only the Trainer's torch AdamW state can be rebuilt")
    if a.get("fp16"):
        raise ValueError("fp16 ZeRO checkpoints are not supported (skipped loss-scaling steps make the Adam step "
                         "count differ from global_step); train with bf16")
    sched = os.path.join(ckpt, "scheduler.pt")
    last = torch.load(sched, weights_only=True).get("_last_lr") if os.path.isfile(sched) else None
    base = a["learning_rate"]
    common = {"betas": (a.get("adam_beta1", 0.9), a.get("adam_beta2", 0.999)), "eps": a.get("adam_epsilon", 1e-8),
              "amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
              "fused": True if a.get("optim") == "adamw_torch_fused" else None, "decoupled_weight_decay": True,
              "initial_lr": base}
    return [{**common, "lr": float(last[g] if last else base),
             "weight_decay": float(a.get("weight_decay", 0.0)) if g == 0 else 0.0} for g in range(n_groups)]


def fp32_weights_only(ckpt: str, names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    """The ``weights_only`` path: DeepSpeed's ``get_fp32_state_dict_from_zero_checkpoint`` (zero_to_fp32) for
    the fp32 weights, and zero Adam moments — what a resume without the optimizer state starts from."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    sd = get_fp32_state_dict_from_zero_checkpoint(ckpt)
    missing = [n for n in names if n not in sd]
    if missing:
        raise ValueError(f"the ZeRO checkpoint does not match its config.json model: missing {missing[:3]}")
    return {n: {"fp32": sd[n].float(), "exp_avg": torch.zeros_like(sd[n], dtype=torch.float32),
                "exp_avg_sq": torch.zeros_like(sd[n], dtype=torch.float32)} for n in names}


def consolidate(ckpt: str, out_dir: str, weights_only: bool = False) -> str:
    """Write ``out_dir/checkpoint-N``: a plain Trainer checkpoint (fp32 ``model.safetensors`` + ``optimizer.pt``
    + the copied scheduler / trainer / RNG state, config and tokenizer) of the ZeRO checkpoint ``ckpt``, and
    ``out_dir``'s run marker and ``tokenizer/`` copied from ``ckpt``'s run, so that ``--output_dir out_dir
    --resume_from_checkpoint auto`` continues the run on any world size without DeepSpeed. Written to a
    staging dir and renamed into place. ``weights_only``: DeepSpeed's zero_to_fp32 weights and a restarted Adam
    (zero moments, step 0; the lr schedule continues). Returns the new checkpoint's path."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForMaskedLM

    import mdlm  # noqa: F401  (registers the model with the Auto classes)

    step_dir = zero_step_dir(ckpt)
    with open(os.path.join(ckpt, "trainer_state.json"), encoding="utf-8") as f:
        step = int(json.load(f)["global_step"])
    config = AutoConfig.from_pretrained(ckpt)
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(config)
    groups = trainer_param_groups(model)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out_dir))) as tmp:
        names = [n for g in groups for n in g]
        states = (fp32_weights_only(ckpt, names) if weights_only
                  else read_universal(to_universal(step_dir, os.path.join(tmp, "universal")), names))
        dst = os.path.join(tmp, "run", f"checkpoint-{step}")
        os.makedirs(dst)
        weights = {n: states[n]["fp32"].view(p.shape).contiguous() for n, p in model.named_parameters() if n in states}
        save_file(weights, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
        torch.save(adamw_state_dict(groups, states, 0 if weights_only else step, group_hyper(ckpt, len(groups)),
                                    shapes), os.path.join(dst, "optimizer.pt"))
        for name in os.listdir(ckpt):
            if name in COPIED or name.startswith("rng_state"):
                shutil.copy2(os.path.join(ckpt, name), os.path.join(dst, name))
        if os.path.isfile(os.path.join(ckpt, "rng_state_0.pth")):  # what a one-process resume reads
            shutil.copy2(os.path.join(ckpt, "rng_state_0.pth"), os.path.join(dst, "rng_state.pth"))
        _copy_run_files(os.path.dirname(os.path.normpath(ckpt)), os.path.join(tmp, "run"))
        os.replace(os.path.join(tmp, "run"), out_dir)
    return os.path.join(out_dir, f"checkpoint-{step}")


def _copy_run_files(run_dir: str, dst: str) -> None:
    """The run marker (so the recipe recognises the run) and the run-level tokenizer, when present."""
    from .checkpoint import read_marker, write_marker

    marker = read_marker(run_dir)
    if marker is not None:  # the new dir holds an unfinished run: drop the source run's "finished" mark
        write_marker(dst, {k: v for k, v in marker.items() if k != "finished"})
    if os.path.isdir(os.path.join(run_dir, "tokenizer")):
        shutil.copytree(os.path.join(run_dir, "tokenizer"), os.path.join(dst, "tokenizer"))
