"""LoRA adapters (Hu et al. 2021) for masked-diffusion LMs through ``peft``: create, save with a
fingerprint of the base, load onto a base (refusing another base), merge into a plain checkpoint.

    from mdlm.lora import LoraArguments, apply_lora, save_adapter, load_adapter, merge_adapter

    model = apply_lora(base, LoraArguments(r=16, alpha=32), tokenizer)   # a peft.PeftModel
    ...train...
    save_adapter(model, "runs/my_adapter", tokenizer=tok)               # adapter + fingerprint
    tuned = load_adapter(AutoModelForMaskedLM.from_pretrained(base_dir), "runs/my_adapter")
    merge_adapter("runs/my_adapter", "runs/merged")                     # plain HF checkpoint

An adapter dir holds peft's ``adapter_config.json`` + ``adapter_model.safetensors`` and
:data:`FINGERPRINT_FILE`: the base's model type, vocabulary size, hidden size, layer count, a hash
of its architecture config and a probe of its weights (a few values of a few tensors). ``load_adapter``
compares them with the model it is given and raises ``ValueError`` naming both bases on a mismatch —
an adapter trained on one base silently "works" on another with the same shapes, producing garbage.
The weight probe is compared with a relative tolerance of 2 % so the same base loaded in bf16/fp16
still matches, while a different training run (or the same one at another step) does not.

Embeddings. LoRA is applied to the linear projections only (default: all seven, as in LLaDA/QLoRA
practice). ``train_embedding_tokens`` additionally makes chosen rows of the input embedding trainable
(e.g. new role/marker tokens): with ``embedding_mode="tokens"`` (default) through peft's
``trainable_token_indices`` (only those rows get a trainable delta; with tied input/output embeddings,
as in :class:`~mdlm.modeling.MDLMForMaskedLM`, the LM head shares the delta); with
``embedding_mode="full"`` — or automatically when the installed peft lacks ``trainable_token_indices``
— through ``modules_to_save``: a full trainable copy of the embedding (every row then trains; a tied
LM head shares the copy through peft's ``ensure_weight_tying``, or — peft without it — gets its own
copy, and the merged checkpoint is then saved untied when the two copies differ).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

import torch

log = logging.getLogger(__name__)

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FINGERPRINT_FILE = "mdlm_base_fingerprint.json"
FINGERPRINT_VERSION = 1
PROBE_TENSORS = 6  # tensors sampled by the weight probe
PROBE_VALUES = 16  # values per sampled tensor
PROBE_RTOL = 2e-2
PROBE_ATOL = 1e-4
TOKEN_ALIASES = ("eos_token", "bos_token", "pad_token", "mask_token", "unk_token")
# config.to_dict() keys that do not change the network (bookkeeping, runtime switches, dtype)
_CONFIG_IGNORE = {
    "architectures", "transformers_version", "dtype", "torch_dtype", "attn_implementation", "use_cache",
    "output_attentions", "output_hidden_states", "return_dict", "torchscript", "problem_type", "id2label",
    "label2id", "chunk_size_feed_forward", "tokenizer_class", "task_specific_params", "pruned_heads",
    "finetuning_task", "name_or_path", "is_encoder_decoder", "tf_legacy_loss", "use_bfloat16",
}


@dataclass
class LoraArguments:
    """The adapter (parsed with ``HfArgumentParser``: ``--r 16 --alpha 32 --dropout 0.05 ...``)."""

    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: float = field(default=32.0, metadata={"help": "LoRA scaling numerator: the update is (alpha / r) · B A"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch input"})
    target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES),
        metadata={"help": "module names (suffixes) that get LoRA; default: all seven projections"},
    )
    train_embedding_tokens: list[str] | None = field(
        default=None,
        metadata={
            "help": "embedding rows to train as well: token ids ('5'), vocabulary tokens ('<|mask|>'), the aliases "
            "eos_token/bos_token/pad_token/mask_token/unk_token, or any text (all of its tokens)"
        },
    )
    embedding_mode: str = field(
        default="tokens",
        metadata={"help": "tokens: peft trainable_token_indices (only the chosen rows); full: modules_to_save "
                  "(whole embedding + LM head; the fallback for peft versions without trainable_token_indices)"},
    )

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"LoRA rank r must be ≥ 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must lie in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("target_modules is empty: name at least one module to adapt")
        if self.embedding_mode not in ("tokens", "full"):
            raise ValueError(f"embedding_mode must be 'tokens' or 'full', got {self.embedding_mode!r}")


# ---------------------------------------------------------------------------------- token ids
def resolve_token_ids(tokens: list[str | int] | None, tokenizer: Any | None, vocab_size: int) -> list[int]:
    """Token ids for ``train_embedding_tokens`` (see :class:`LoraArguments`), sorted and unique.
    Raises ValueError for an id outside ``vocab_size`` or a string that needs a tokenizer / is empty."""
    ids: set[int] = set()
    for t in tokens or []:
        if isinstance(t, int) or (isinstance(t, str) and t.strip().lstrip("-").isdigit()):
            ids.add(int(t))
            continue
        if tokenizer is None:
            raise ValueError(f"train_embedding_tokens entry {t!r} is not an id; pass the tokenizer to resolve it")
        if t in TOKEN_ALIASES:
            tid = getattr(tokenizer, f"{t}_id", None)
            if tid is None:
                raise ValueError(f"train_embedding_tokens: the tokenizer has no {t}")
            ids.add(int(tid))
            continue
        tid = tokenizer.convert_tokens_to_ids(t)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tokenizer.convert_ids_to_tokens(tid) == t:
            ids.add(tid)
            continue
        pieces = tokenizer(t, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise ValueError(f"train_embedding_tokens entry {t!r} encodes to no tokens")
        ids.update(int(p) for p in pieces)
    bad = sorted(i for i in ids if not 0 <= i < vocab_size)
    if bad:
        raise ValueError(f"train_embedding_tokens ids {bad} lie outside the model's vocabulary (size {vocab_size})")
    return sorted(ids)


def _peft_has_trainable_tokens() -> bool:
    from peft import LoraConfig

    return "trainable_token_indices" in {f.name for f in fields(LoraConfig)}


def _zero3_without_cuda() -> bool:
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled() and not torch.cuda.is_available()


def _embedding_module_names(model: torch.nn.Module) -> tuple[str, str | None]:
    """(input embedding, output embedding or None) module names, relative to the model."""
    names = {id(m): n for n, m in model.named_modules()}
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return names[id(emb)].split(".")[-1], (names[id(out)].split(".")[-1] if out is not None else None)


# ------------------------------------------------------------------------------------- create
@contextlib.contextmanager
def peft_deprecation_quiet():
    """peft reads ``model.is_gradient_checkpointing`` when it wraps a model, a property transformers 5
    deprecates with a FutureWarning (renamed ``is_activation_checkpointing``): peft's call, not ours, so
    that one warning is muted while peft wraps the model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def apply_lora(model: torch.nn.Module, args: LoraArguments, tokenizer: Any | None = None):
    """Wrap ``model`` (an HF model, weights loaded) in a ``peft.PeftModel`` with a fresh LoRA adapter;
    only the adapter (and the chosen embedding rows) is trainable. The base's fingerprint is kept on
    the result as ``mdlm_base_fingerprint`` (written by :func:`save_adapter`)."""
    from peft import LoraConfig, get_peft_model

    fingerprint = base_fingerprint(model)
    vocab = model.get_input_embeddings().num_embeddings
    tok_ids = resolve_token_ids(args.train_embedding_tokens, tokenizer, vocab)
    present = {n.split(".")[-1] for n, _ in model.named_modules()}
    missing = [m for m in args.target_modules if m not in present]
    if missing:
        raise ValueError(f"target_modules {missing} are not modules of this model (it has e.g. {sorted(present)[:12]})")
    kwargs: dict[str, Any] = {}
    if tok_ids:
        mode = args.embedding_mode
        if mode == "tokens" and not _peft_has_trainable_tokens():
            log.warning("this peft has no trainable_token_indices; training the whole embedding (modules_to_save)")
            mode = "full"
        if mode == "tokens" and _zero3_without_cuda():
            # peft gathers ZeRO-3-partitioned embedding rows onto a CUDA device only
            log.warning("trainable_token_indices under ZeRO-3 needs CUDA; training the whole embedding (modules_to_save)")
            mode = "full"
        emb_name, out_name = _embedding_module_names(model)
        if mode == "tokens":
            kwargs["trainable_token_indices"] = {emb_name: tok_ids}
        else:
            tied = bool(getattr(model.config, "tie_word_embeddings", False)) and out_name is not None
            if tied and "ensure_weight_tying" in {f.name for f in fields(LoraConfig)}:
                kwargs["modules_to_save"] = [emb_name]  # peft ties the LM head's copy to it
                kwargs["ensure_weight_tying"] = True
            else:
                kwargs["modules_to_save"] = [emb_name] + ([out_name] if out_name else [])
    config = LoraConfig(
        r=args.r,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=list(args.target_modules),
        bias="none",
        **kwargs,
    )
    with peft_deprecation_quiet():
        peft_model = get_peft_model(model, config)
    if len(kwargs.get("modules_to_save") or []) > 1 and getattr(model.config, "tie_word_embeddings", False):
        # (peft without ensure_weight_tying) each copy trains on its own; merge_adapter then saves untied
        log.warning("embedding_mode=full on a tied model: input and output embedding copies train separately")
    peft_model.mdlm_base_fingerprint = fingerprint
    return peft_model


# -------------------------------------------------------------------------------- fingerprint
def _architecture_config(config: Any) -> dict[str, Any]:
    d = config.to_dict()
    return {k: v for k, v in sorted(d.items()) if not k.startswith("_") and k not in _CONFIG_IGNORE}


def _canonical_name(name: str) -> str | None:
    """A base parameter's name without peft wrappers; None for adapter parameters."""
    if any(s in name for s in ("lora_", "trainable_tokens_", "modules_to_save.")):
        return None
    for prefix in ("base_model.model.",):
        if name.startswith(prefix):
            name = name[len(prefix):]
    for wrapper in (".base_layer", ".token_adapter", ".original_module"):
        name = name.replace(wrapper, "")
    return name


def _gathered(p: torch.Tensor) -> torch.Tensor:
    """The full tensor, gathering a ZeRO-3 partitioned parameter (a collective: every rank calls it)."""
    if hasattr(p, "ds_numel") and p.numel() != getattr(p, "ds_numel", p.numel()):
        import deepspeed

        with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
            return p.detach().float().cpu().clone()
    return p.detach().float().cpu()


def _weight_probe(model: torch.nn.Module) -> dict[str, list[float]]:
    params: dict[str, torch.Tensor] = {}
    for n, p in model.named_parameters():
        c = _canonical_name(n)
        if c is not None and c not in params:
            params[c] = p
    names = sorted(params)
    if not names:
        return {}
    k = min(PROBE_TENSORS, len(names))
    picked = sorted({names[round(i * (len(names) - 1) / max(k - 1, 1))] for i in range(k)})
    probe = {}
    for n in picked:
        flat = _gathered(params[n]).reshape(-1)
        m = min(PROBE_VALUES, flat.numel())
        idx = torch.arange(m, dtype=torch.long) * (flat.numel() - 1) // max(m - 1, 1)  # exact in int64 (float32 linspace is not past 2^24)
        probe[n] = [float(f"{v:.6g}") for v in flat[idx].tolist()]
    return probe


def base_fingerprint(model: torch.nn.Module) -> dict[str, Any]:
    """What identifies a base model: type, vocabulary, width, depth, an architecture-config hash and a
    weight probe (see the module docstring). Works on a plain model or a peft-wrapped one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    arch = _architecture_config(cfg)
    return {
        "version": FINGERPRINT_VERSION,
        "base_model": getattr(cfg, "_name_or_path", "") or "",
        "model_type": getattr(cfg, "model_type", None),
        "vocab_size": base.get_input_embeddings().num_embeddings,
        "hidden_size": getattr(cfg, "hidden_size", None),
        "num_hidden_layers": getattr(cfg, "num_hidden_layers", None),
        "config_sha256": hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:16],
        "weights_probe": _weight_probe(model),
    }


def _describe(fp: dict[str, Any]) -> str:
    return (
        f"{fp.get('base_model') or '(unnamed)'} [{fp.get('model_type')}, vocab {fp.get('vocab_size')}, hidden "
        f"{fp.get('hidden_size')}, {fp.get('num_hidden_layers')} layers, config {fp.get('config_sha256')}]"
    )


def fingerprint_mismatch(expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """None when ``actual`` is the base ``expected`` describes, else what differs (one phrase)."""
    for key in ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "config_sha256"):
        if expected.get(key) != actual.get(key):
            return f"{key} {expected.get(key)!r} ≠ {actual.get(key)!r}"
    pe, pa = expected.get("weights_probe") or {}, actual.get("weights_probe") or {}
    if pe and pa:
        if sorted(pe) != sorted(pa):
            return "different parameter names"
        for n in pe:
            a, b = torch.tensor(pe[n]), torch.tensor(pa[n])
            if a.shape != b.shape or not torch.allclose(a, b, rtol=PROBE_RTOL, atol=PROBE_ATOL):
                return f"different weights (e.g. {n})"
    return None


def write_fingerprint(adapter_dir: str, fingerprint: dict[str, Any]) -> str:
    """Write :data:`FINGERPRINT_FILE` into ``adapter_dir`` (atomically); returns its path."""
    os.makedirs(adapter_dir, exist_ok=True)
    path = os.path.join(adapter_dir, FINGERPRINT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(fingerprint, f, indent=1)
    os.replace(tmp, path)
    return path


def read_fingerprint(adapter_dir: str) -> dict[str, Any] | None:
    path = os.path.join(adapter_dir, FINGERPRINT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_base(model: torch.nn.Module, adapter_dir: str) -> None:
    """Raise ValueError when ``adapter_dir`` was made for another base than ``model`` (no fingerprint:
    a warning; peft's own shape checks still apply)."""
    expected = read_fingerprint(adapter_dir)
    if expected is None:
        log.warning("%s has no %s; cannot check the adapter was made for this base", adapter_dir, FINGERPRINT_FILE)
        return
    actual = base_fingerprint(model)
    why = fingerprint_mismatch(expected, actual)
    if why is not None:
        raise ValueError(
            f"adapter {adapter_dir} was made for base {_describe(expected)}, but the model given is "
            f"{_describe(actual)}: {why}"
        )


# ---------------------------------------------------------------------------------- save/load
def set_base_path(peft_model, base_dir: str) -> None:
    """Record ``base_dir`` (absolute) as ``base_model_name_or_path`` of every adapter config."""
    path = os.path.abspath(base_dir)
    for cfg in peft_model.peft_config.values():
        cfg.base_model_name_or_path = path
    fp = getattr(peft_model, "mdlm_base_fingerprint", None)
    if fp is not None:
        fp["base_model"] = path


def save_adapter(peft_model, adapter_dir: str, tokenizer: Any | None = None, generation_defaults: dict | None = None) -> None:
    """``adapter_config.json`` + ``adapter_model.safetensors`` + :data:`FINGERPRINT_FILE` (+ tokenizer
    files, + ``generation_config.json`` from ``generation_defaults``) into ``adapter_dir``."""
    peft_model.save_pretrained(adapter_dir, safe_serialization=True)
    fp = getattr(peft_model, "mdlm_base_fingerprint", None) or base_fingerprint(peft_model)
    write_fingerprint(adapter_dir, fp)
    if tokenizer is not None:
        tokenizer.save_pretrained(adapter_dir)
    if generation_defaults is not None:
        from .generation_defaults import save_generation_defaults

        save_generation_defaults(adapter_dir, generation_defaults)


def load_adapter(model: torch.nn.Module, adapter_dir: str, *, is_trainable: bool = False, merge: bool = False):
    """Put the adapter of ``adapter_dir`` on ``model`` (the base, weights loaded) after checking it
    was made for this base (:func:`check_base`). Returns the ``PeftModel`` (``merge=True``: the plain
    model with the adapter merged into its weights)."""
    from peft import PeftModel

    if not os.path.isfile(os.path.join(adapter_dir, "adapter_config.json")):
        raise ValueError(f"{adapter_dir!r} is not an adapter directory (no adapter_config.json)")
    from .weights import check_weights_dir

    check_weights_dir(adapter_dir, what="adapter", adapter=True)  # safetensors only: an adapter_model.bin is refused
    check_base(model, adapter_dir)
    with peft_deprecation_quiet():
        peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=is_trainable)
    peft_model.mdlm_base_fingerprint = read_fingerprint(adapter_dir)
    if merge:
        return _merge(peft_model)
    return peft_model


def _merge(peft_model) -> torch.nn.Module:
    merged = peft_model.merge_and_unload()
    cfg = merged.config
    inp, out = merged.get_input_embeddings(), merged.get_output_embeddings()
    if getattr(cfg, "tie_word_embeddings", False) and out is not None and out.weight is not inp.weight:
        if torch.equal(out.weight, inp.weight):
            out.weight = inp.weight
        else:  # embedding_mode=full trained the two copies apart: keep both
            cfg.tie_word_embeddings = False
    return merged


def adapter_base_dir(adapter_dir: str) -> str:
    """The local base directory named by ``adapter_config.json`` (ValueError when it is not one)."""
    path = os.path.join(adapter_dir, "adapter_config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{adapter_dir!r} is not an adapter directory (no adapter_config.json)")
    with open(path, encoding="utf-8") as f:
        base = json.load(f).get("base_model_name_or_path")
    if not base or not os.path.isdir(base):
        raise ValueError(f"adapter {adapter_dir!r} names base model {base!r}, which is not a local directory")
    return base


def merge_adapter(adapter_dir: str, out_dir: str, base_dir: str | None = None, dtype: torch.dtype | None = None) -> str:
    """Merge the adapter into its base and write a plain HF checkpoint to ``out_dir``
    (``model.safetensors`` + ``config.json`` + tokenizer + ``generation_config.json`` + ``mdlm_merge.json``
    recording where it came from), loadable with ``AutoModelForMaskedLM.from_pretrained``.
    ``out_dir`` must be missing or empty; files are written to ``out_dir/.staging`` and moved in."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from .generation_defaults import load_generation_defaults, save_generation_defaults
    from .training.checkpoint import publish_files

    base_dir = base_dir or adapter_base_dir(adapter_dir)
    if os.path.exists(out_dir) and [e for e in os.listdir(out_dir) if not e.startswith(".")]:
        raise ValueError(f"merge output dir {out_dir!r} is not empty; choose another --out")
    kwargs = {"dtype": dtype} if dtype is not None else {}
    base = AutoModelForMaskedLM.from_pretrained(base_dir, use_safetensors=True, **kwargs)
    merged = load_adapter(base, adapter_dir, merge=True)
    staging = os.path.join(out_dir, ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging, safe_serialization=True)
    tok_dir = adapter_dir if os.path.isfile(os.path.join(adapter_dir, "tokenizer_config.json")) else base_dir
    if os.path.isfile(os.path.join(tok_dir, "tokenizer_config.json")):
        AutoTokenizer.from_pretrained(tok_dir).save_pretrained(staging)
    defaults = {**load_generation_defaults(base_dir), **load_generation_defaults(adapter_dir)}
    if defaults:
        save_generation_defaults(staging, defaults)
    with open(os.path.join(staging, "mdlm_merge.json"), "w", encoding="utf-8") as f:
        json.dump({"adapter": os.path.abspath(adapter_dir), "base": os.path.abspath(base_dir),
                   "base_fingerprint": read_fingerprint(adapter_dir)}, f, indent=1)
    publish_files(staging, out_dir)
    return out_dir


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts (peft-wrapped base weights counted once)."""
    def n(p: torch.nn.Parameter) -> int:  # ZeRO-3 partitions parameters: numel() is 0, ds_numel the full size
        return int(getattr(p, "ds_numel", p.numel()))

    trainable = sum(n(p) for p in model.parameters() if p.requires_grad)
    total = sum(n(p) for p in model.parameters())
    return trainable, total


__all__ = [
    "DEFAULT_TARGET_MODULES",
    "FINGERPRINT_FILE",
    "LoraArguments",
    "adapter_base_dir",
    "apply_lora",
    "base_fingerprint",
    "check_base",
    "count_parameters",
    "fingerprint_mismatch",
    "load_adapter",
    "merge_adapter",
    "resolve_token_ids",
    "save_adapter",
    "set_base_path",
    "write_fingerprint",
]
