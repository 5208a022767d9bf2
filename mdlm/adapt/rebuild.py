"""Rebuild on any machine what GPU runs produced, from the source (a GGUF or HF dir) and the persisted adapter parts
(:mod:`mdlm.adapt.persist`), with every checksum and base fingerprint checked:

1. the un-trained MDM of ``recipes/adapt_ar.py --base_only true`` (the source, [MASK] added, wrapped);
2. + the AR→MDM adaptation adapter, **merged** → ``OUT/base``: the adapted MDM, a plain checkpoint (the SFT base);
3. optionally + the SFT adapter's parts → ``OUT/sft``: the adapter dir, its base path pointed at ``OUT/base``, so
   ``recipes/generate.py --model OUT/sft --chat`` loads base + adapter.

Why the SFT trains a NEW LoRA on the merged adapted model (rather than continuing the adaptation adapter): the SFT
adapter stays small (r=16: ~10 MB in bf16, one part), the adapted base is a plain checkpoint (ZeRO-3 partitions it like
any other, peft wraps it once), and the adapted model without SFT stays available as the "base" row of every
comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from .persist import restamp_base_fingerprint, unpack_adapter


def adapt_arguments(config_path: str, source: str | None = None, gguf_file: str | None = None):
    """AdaptArguments of the adaptation config (only its AdaptArguments keys). With ``source``: this machine's source
    (and ``gguf_file``) replace the config's source / random config."""
    from dataclasses import fields

    from .args import AdaptArguments

    cfg = _read_yaml(config_path)
    names = {f.name for f in fields(AdaptArguments)}
    drop = ("source", "gguf_file", "random_config") if source else ()
    kept = {k: v for k, v in cfg.items() if k in names and k not in drop}
    if source:
        kept.update(source=source, gguf_file=gguf_file)
    return AdaptArguments(**kept)


def config_seed(config_path: str) -> int:
    """The training seed of an adaptation config (TrainingArguments' default 42 when it names none): a random-config
    base is rebuilt identically only under the same seed."""
    return int(_read_yaml(config_path).get("seed", 42))


def _read_yaml(path: str) -> dict:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def merged_adapted_model(source: str, gguf_file: str | None, adapt_parts: str, adapt_config: str, work: str):
    """(adapted MDM with the adaptation adapter merged, tokenizer). The adapter is unpacked into ``work``; an adapter
    fingerprinted before the config hash dropped load paths is re-stamped when everything else matches."""
    from ..lora import load_adapter
    from .build import build_mdm

    adapter_dir = os.path.join(work, "adapt_adapter")
    unpack_adapter(adapt_parts, adapter_dir)
    model, tok = build_mdm(adapt_arguments(adapt_config, source, gguf_file))
    try:
        merged = load_adapter(model, adapter_dir, merge=True)
    except ValueError as e:
        if "config_sha256" not in str(e):
            raise
        restamp_base_fingerprint(adapter_dir, model)  # raises unless only the config hash differs
        print("note: the adaptation adapter's config hash was re-stamped (docs/backbones.md, step 2b)", flush=True)
        merged = load_adapter(model, adapter_dir, merge=True)
    return merged, tok


def save_checkpoint(model, tok, out_dir: str, defaults: dict, provenance: dict) -> str:
    """``model`` + tokenizer + sampler defaults + ``mdlm_rebuild.json`` into ``out_dir`` (through a staging dir)."""
    from ..generation_defaults import save_generation_defaults
    from ..training.checkpoint import publish_files

    staging = os.path.join(out_dir, ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tok.save_pretrained(staging)
    save_generation_defaults(staging, defaults)
    with open(os.path.join(staging, "mdlm_rebuild.json"), "w", encoding="utf-8") as f:
        json.dump(provenance, f, indent=1)
    publish_files(staging, out_dir)
    return out_dir


def attach_sft_adapter(sft_parts: str, base_dir: str, out_dir: str) -> str:
    """Unpack the SFT adapter's parts into ``out_dir``, point it at ``base_dir`` and check it fits that base."""
    import torch
    from transformers import AutoModelForMaskedLM

    from ..lora import check_base

    unpack_adapter(sft_parts, out_dir)
    cfg_path = os.path.join(out_dir, "adapter_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = os.path.abspath(base_dir)
    with open(cfg_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
    os.replace(cfg_path + ".tmp", cfg_path)
    base = AutoModelForMaskedLM.from_pretrained(base_dir, use_safetensors=True, dtype=torch.float32)
    try:
        check_base(base, out_dir)
    except ValueError as e:  # the config hash of the same weights differs across transformers versions (5.17 → 5.24)
        if "config_sha256" not in str(e):
            raise
        restamp_base_fingerprint(out_dir, base)  # raises unless only the config hash differs (the weights probe matches)
        print("note: the SFT adapter's config hash was re-stamped for this transformers version (weights match)",
              flush=True)
    return out_dir


def rebuild(source: str, gguf_file: str | None, adapt_parts: str, out_dir: str, *, adapt_config: str,
            sft_parts: str | None = None, seq_len: int = 512) -> dict[str, str]:
    """Steps 1–3 of the module docstring into ``out_dir`` (missing or empty). Returns {"base": dir, "sft": dir?}."""
    from .build import generation_defaults

    if os.path.isdir(out_dir) and [e for e in os.listdir(out_dir) if not e.startswith(".")]:
        raise ValueError(f"{out_dir!r} is not empty; choose another directory (or remove it)")
    for prefix in [adapt_parts] + ([sft_parts] if sft_parts else []):
        if not os.path.isfile(f"{prefix}.sha256"):
            raise ValueError(f"{prefix}.sha256 does not exist (expected beside the {os.path.basename(prefix)}.tar.partNN files)")
    out = {}
    with tempfile.TemporaryDirectory(prefix="mdlm_rebuild_") as work:
        model, tok = merged_adapted_model(source, gguf_file, adapt_parts, adapt_config, work)
        prov = {"source": os.path.abspath(source), "gguf_file": gguf_file, "adapt_parts": os.path.abspath(adapt_parts),
                "adapt_config": adapt_config}
        out["base"] = save_checkpoint(model, tok, os.path.join(out_dir, "base"), generation_defaults(tok, seq_len), prov)
    if sft_parts:
        out["sft"] = attach_sft_adapter(sft_parts, out["base"], os.path.join(out_dir, "sft"))
    return out
