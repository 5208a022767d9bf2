"""``MDLMGenerationConfig``: every setting of :func:`mdlm.sampling.generate`, with help text, validated on construction.

One dataclass serves the library, every command line (``add_generation_arguments`` builds the flags from the
fields' ``help`` metadata through ``HfArgumentParser``) and the checkpoint (``save_pretrained`` /
``from_pretrained``: ``generation_config.json``). Names follow the field's usage (``max_new_tokens``,
``guidance_scale``, ``cache_implementation``); a name that meant two things before is now two names:

* ``choice_temperature`` → ``choice_noise`` (MaskGIT's Gumbel scale on the position score) and
  ``moment_alpha`` (the moment sampler's α);
* ``remasking`` → ``unmasking`` (which rule picks the positions to unmask: confidence / ancestral / moment /
  fast_dllm) and ``remdm_*`` (ReMDM's re-masking of committed tokens);
* ``remasking="random"`` and ``confidence="random"`` (the same rule) → ``confidence="random"``.

``from_dict`` maps those old keys (checkpoints written before the rename); any other unknown key is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from typing import Any

UNMASKING = ("confidence", "ancestral", "moment", "fast_dllm", "eb")
CONFIDENCES = ("prob", "margin", "entropy", "random")
REMDM_STRATEGIES = ("low_confidence", "random")
GUIDANCE_TIMES = ("masked", "schedule")
CACHE_IMPLEMENTATIONS = ("none", "prefix", "dual", "block_exact")  # block_exact: block diffusion (bd3)
EVEN = "even"
CONFIG_NAME = "generation_config.json"

# checkpoints and callers written before the rename: old key → new key
_RENAMED = {
    "gen_length": "max_new_tokens", "cfg_scale": "guidance_scale", "cfg_interval": "guidance_interval",
    "cfg_time": "guidance_time", "cfg_batch": "guidance_batch", "cache": "cache_implementation",
    "remask_committed": "remdm_eta", "remask_strategy": "remdm_strategy", "remask_interval": "remdm_interval",
    "hybrid": "moment_hybrid", "substeps": "moment_substeps", "choice_anneal": "choice_noise_anneal",
    "mask_id": "mask_token_id", "eos_id": "eos_token_id",
}
_OLD_POLICY_KEYS = ("sampler", "remasking", "choice_temperature")


def _help(text: str, **kw: Any) -> dict[str, Any]:
    return {"help": text, **kw}


@dataclass
class MDLMGenerationConfig:
    """Sampler settings (see :mod:`mdlm.sampling` for the loop each field enters)."""

    # --- loop
    max_new_tokens: int = field(default=128, metadata=_help("text: number of tokens to generate after the prompt", aliases=["--gen-length"]))
    steps: int = field(default=64, metadata=_help(
        "denoising steps (network calls without guidance); clamped to the positions to generate; with a "
        "threshold or unmasking=fast_dllm a maximum", aliases=["--num-inference-steps"]))
    block_length: int | None = field(default=None, metadata=_help(
        "semi-autoregressive block size over the generated positions (LLaDA); none = one block"))
    schedule: str = field(default="cosine", metadata=_help(
        "unmasking schedule: even (LLaDA's split), linear, cosine, exp, log-exp, arccos, poly<p>"))
    # --- tokens
    temperature: float = field(default=1.0, metadata=_help("token temperature; 0 = argmax"))
    top_k: int | None = field(default=None, metadata=_help("keep the k most likely tokens (none = off)"))
    top_p: float | None = field(default=None, metadata=_help("nucleus filter mass in (0, 1] (none = off)"))
    # --- which positions to unmask
    unmasking: str = field(default="confidence", metadata=_help(
        "position rule: confidence (MaskGIT / LLaDA top-k), ancestral (MDLM), moment (Hayakawa et al. 2025), "
        "fast_dllm (top-1 plus every position above --threshold, or Fast-dLLM's --factor rule), eb (entropy-bounded, "
        "Ben-Hamu et al. 2025, budget --eb-gamma)", choices=UNMASKING))
    confidence: str = field(default="prob", metadata=_help(
        "confidence of a prediction: prob, margin, entropy (negative) or random", choices=CONFIDENCES))
    choice_noise: float = field(default=0.0, metadata=_help(
        "confidence rule: MaskGIT's Gumbel noise scale on the position score (0 = none)"))
    choice_noise_anneal: bool = field(default=True, metadata=_help(
        "anneal the choice noise linearly to 0 over each block's steps (MaskGIT's code)"))
    threshold: float | None = field(default=None, metadata=_help(
        "confidence threshold: also commit every masked position of the block at or above it (Fast-dLLM)"))
    moment_alpha: float = field(default=0.0, metadata=_help("moment rule: α of β = 1 + 1/α (0 = greedy)"))
    moment_hybrid: float = field(default=0.0, metadata=_help(
        "moment rule: share of each step's positions chosen greedily", aliases=["--hybrid"]))
    moment_substeps: int = field(default=1, metadata=_help(
        "moment rule: draw each step's chosen tokens in this many sequential groups", aliases=["--substeps"]))
    partial_cache: bool = field(default=False, metadata=_help(
        "with moment_substeps > 1: later groups recompute only the chosen columns against cached K/V"))
    # --- adaptive parallel commits and exact verification (docs/sampling.md)
    factor: float | None = field(default=None, metadata=_help(
        "fast_dllm: Fast-dLLM's factor rule instead of the threshold: commit the n most confident positions with "
        "(n+1)·(1 − c_(n)) < factor, at least one (e.g. 1.0)"))
    eb_gamma: float = field(default=0.1, metadata=_help(
        "eb: entropy budget γ: commit the lowest-entropy positions while Σ H − max H ≤ γ (nats), at least one"))
    eos_early_stop: bool = field(default=False, metadata=_help(
        "end a block early when all its masked positions (or all after a committed EOS) are predicted EOS/pad: "
        "fill them and what follows with EOS (needs an EOS id)"))
    verify: bool = field(default=False, metadata=_help(
        "exact self-speculative decoding: draft several commits (top-verify_draft for confidence, the threshold / "
        "factor / EB picks otherwise), check them with one batched forward, keep the prefix that one-token-per-step "
        "greedy decoding would make (needs temperature 0; the output equals it, steps are not used)"))
    step_graph: bool = field(default=True, metadata=_help(
        "GPU, greedy step without cuda_graphs: replay the step's own kernels after each forward as one CUDA graph "
        "(the same samples; cuts the sampler's launch overhead)"))
    verify_draft: int = field(default=8, metadata=_help(
        "verify: most draft commits per step (the verification forward runs up to this many canvases per row)"))
    # --- ReMDM re-masking of committed tokens
    remdm_eta: float = field(default=0.0, metadata=_help(
        "ReMDM: share of the block's committed tokens sent back to [MASK] after each step (0 = off)",
        aliases=["--remask-committed"]))
    remdm_strategy: str = field(default="low_confidence", metadata=_help(
        "ReMDM: which committed tokens to re-mask: low_confidence or random", choices=REMDM_STRATEGIES))
    remdm_interval: list[float] = field(default_factory=lambda: [0.0, 1.0], metadata=_help(
        "ReMDM: re-mask only while the block's schedule time s is in (lo, hi]", nargs=2))
    # --- classifier-free guidance
    guidance_scale: float = field(default=0.0, metadata=_help(
        "classifier-free guidance s in c + s·(c − u); 0 = off", aliases=["--cfg-scale"]))
    guidance_interval: list[float] = field(default_factory=lambda: [0.0, 1.0], metadata=_help(
        "guide only while the time τ is in (lo, hi]", nargs=2, aliases=["--cfg-interval"]))
    guidance_time: str = field(default="masked", metadata=_help(
        "τ of the interval: masked (fraction still masked) or schedule (eMIGM)", choices=GUIDANCE_TIMES,
        aliases=["--cfg-time"]))
    guidance_batch: bool = field(default=True, metadata=_help("run both guidance passes as one batch of 2B rows"))
    # --- stopping, special tokens
    stop_at_eos: bool = field(default=True, metadata=_help(
        "once everything still masked follows a committed EOS, fill it with EOS and stop the row"))
    suppress_pad: bool = field(default=True, metadata=_help("text: never sample the pad token"))
    mask_token_id: int | None = field(default=None, metadata=_help("id of [MASK] (default: the model's)"))
    eos_token_id: int | None = field(default=None, metadata=_help("id of EOS (default: the tokenizer's)"))
    pad_token_id: int | None = field(default=None, metadata=_help("id of padding (default: the tokenizer's)"))
    chat: bool = field(default=False, metadata=_help("text: wrap prompts in the chat template"))
    # --- speed and bookkeeping
    cache_implementation: str = field(default="none", metadata=_help(
        "block K/V cache (Fast-dLLM): none, prefix or dual; needs block_length. block_exact: the exact cache of a "
        "block-diffusion model's finished blocks (its default; docs/block_diffusion.md)", choices=CACHE_IMPLEMENTATIONS,
        aliases=["--cache"]))
    cuda_graphs: bool = field(default=False, metadata=_help(
        "GPU: replay each greedy step as one CUDA graph (temperature 0, confidence prob, no noise; unmasking "
        "confidence, fast_dllm or eb; with verify: fixed-shape steps of verify_draft canvases each)"))
    cuda_graph_reuse: bool = field(default=True, metadata=_help(
        "cuda_graphs without a cache or with the dual cache: the model reads the block window from device tensors, "
        "so one graph per kind of step (block start, later step) serves every block of the same width; off: one "
        "capture per block (the same samples; slower: each capture costs host time)"))
    launch_ahead: bool = field(default=True, metadata=_help(
        "greedy threshold / fast_dllm / eb steps with cuda_graphs, no cache or EOS policy, two blocks or more: keep "
        "the block's progress on the device and launch steps without reading it back after each one (one host "
        "synchronisation per run of steps instead of one per step; the same samples and NFE; docs/sampling.md)"))
    torch_compile: bool = field(default=False, metadata=_help(
        "compile the network's forward with torch.compile (TorchInductor fuses its small kernels; with cuda_graphs the "
        "graphs capture the fused kernels); the first generation of each canvas shape pays the compilation, tens of "
        "seconds on a GPU; needs the model itself (an nn.Module), not a logits function"))
    reuse_logits: bool = field(default=True, metadata=_help("reuse logits while the canvas is unchanged"))
    return_history: bool = field(default=False, metadata=_help("keep the canvas after every step"))

    def __post_init__(self) -> None:
        from .validation import validate

        validate(self)

    # ------------------------------------------------------------------ what the loop asks
    @property
    def uses_greedy_step(self) -> bool:
        """True when every step is the fixed-shape greedy step (:mod:`.fused_step`): greedy confidence, Fast-dLLM
        (threshold or factor) or EB rule (CUDA-graph capturable)."""
        return (self.unmasking in ("confidence", "fast_dllm", "eb") and self.confidence == "prob"
                and self.temperature == 0 and self.choice_noise == 0 and self.remdm_eta == 0
                and self.guidance_scale == 0 and not self.verify)

    @property
    def uses_even_schedule(self) -> bool:
        return self.schedule == EVEN

    # ------------------------------------------------------------------ dicts, files
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MDLMGenerationConfig:
        """From a dict of field values; old key names are mapped, any other unknown key is a ValueError."""
        return cls(**_new_keys(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_legacy_dict(self) -> dict[str, Any]:
        """The settings under the names used before the rename (``sampler``, ``remasking``, ``choice_temperature``,
        ``cfg_scale``, …), for readers of results written then."""
        out = {old: getattr(self, new) for old, new in _RENAMED.items() if old not in ("mask_id", "eos_id")}
        moment = self.unmasking == "moment"
        out.update(sampler="moment" if moment else "maskgit",
                   remasking="ancestral" if self.unmasking == "ancestral" else "low_confidence",
                   choice_temperature=self.moment_alpha if moment else self.choice_noise,
                   **{k: v for k, v in self.to_dict().items() if k not in _RENAMED.values()})
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """Fields that differ from the defaults."""
        base = type(self)().to_dict()
        return {k: v for k, v in self.to_dict().items() if base[k] != v}

    def save_pretrained(self, directory: str) -> None:
        """Write ``directory/generation_config.json`` (atomically: never a half-written file)."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"mdlm_generation_config": 2, **self.to_dict()}, f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def from_pretrained(cls, directory: str, **overrides: Any) -> MDLMGenerationConfig:
        """Read ``directory/generation_config.json`` (this format, or the older one with an ``mdlm_sampler``
        dict); ``overrides`` (None = keep) apply on top. A missing file gives the defaults."""
        return cls.from_dict({**read_generation_dict(directory), **{k: v for k, v in overrides.items()
                                                                    if v is not None}})


def read_generation_dict(directory: str) -> dict[str, Any]:
    """The stored settings of ``directory/generation_config.json`` as a flat dict ({} without the file)."""
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    if "mdlm_generation_config" in raw:
        raw.pop("mdlm_generation_config")
        return raw
    out = dict(raw.get("mdlm_sampler") or {})  # the older layout: an HF GenerationConfig with extras
    for k in ("mask_token_id", "eos_token_id", "pad_token_id"):
        if raw.get(k) is not None:
            out[k] = raw[k]
    return out


def _new_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Map old key names onto the fields; a ValueError names any key that is neither."""
    kw = {_RENAMED.get(k, k): v for k, v in values.items() if k not in _OLD_POLICY_KEYS}
    sampler = str(values.get("sampler", "maskgit")).lower()
    remasking = str(values.get("remasking", "low_confidence")).lower()
    if sampler not in ("maskgit", "moment"):
        raise ValueError(f"unknown sampler {values['sampler']!r}; valid: maskgit, moment")
    if remasking not in ("low_confidence", "random", "ancestral"):
        raise ValueError(f"unknown remasking {values['remasking']!r}; valid: low_confidence, random, ancestral")
    if sampler == "moment" and remasking != "low_confidence":
        raise ValueError("sampler='moment' chooses positions itself; use remasking='low_confidence'")
    # the old keys, given in a merged dict after the new ones, win: they say which rule the value belongs to
    if sampler == "moment":
        kw["unmasking"] = "moment"
        alpha = values.get("choice_temperature", kw.get("moment_alpha", kw.get("choice_noise", 0.0)))
        kw.update(moment_alpha=alpha, choice_noise=0.0)
    elif "sampler" in values and kw.get("unmasking") == "moment":
        kw["unmasking"] = "confidence"
    if remasking == "ancestral":
        kw["unmasking"] = "ancestral"
    elif remasking == "random":
        kw["confidence"] = "random"
    elif "remasking" in values and kw.get("confidence") == "random":
        kw["confidence"] = "prob"  # 'low_confidence' asks for a confidence order: it overrides a stored random order
    if sampler != "moment" and "choice_temperature" in values:
        kw.update(choice_noise=values["choice_temperature"], moment_alpha=0.0)
    names = {f.name for f in dataclasses.fields(MDLMGenerationConfig)}
    unknown = sorted(set(kw) - names)
    if unknown:
        raise ValueError(f"unknown generation setting(s) {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(names))}")
    return kw


def SamplerConfig(**kwargs: Any) -> MDLMGenerationConfig:  # noqa: N802 - the old class name, kept for callers
    """The former ``SamplerConfig(...)``: accepts the old keyword names and returns an :class:`MDLMGenerationConfig`."""
    return MDLMGenerationConfig.from_dict(kwargs)


# ---------------------------------------------------------------------------------------------- command lines


def add_generation_arguments(parser: argparse.ArgumentParser | Any, exclude: tuple[str, ...] = (),
                             legacy: bool = True) -> list[str]:
    """Add one flag per field (``--guidance_scale`` / ``--guidance-scale``, help from the field's metadata) to
    ``parser`` (a parser or an argument group) through ``HfArgumentParser``'s field parser. Defaults are
    suppressed, so the parsed namespace holds only the flags the user gave: pass it to :func:`given_settings`
    and apply those on top of a checkpoint's ``generation_config.json`` (``from_dict``). With ``legacy`` the
    flags of the older names are accepted too (``--sampler``, ``--remasking``, ``--choice-temperature``,
    ``--constant-choice-noise``; mapped by ``from_dict``). Returns the destination names added."""
    from transformers import HfArgumentParser

    hints = typing.get_type_hints(MDLMGenerationConfig)
    added = []
    for f in dataclasses.fields(MDLMGenerationConfig):
        if f.name in exclude:
            continue
        before = len(parser._actions)
        HfArgumentParser._parse_dataclass_field(parser, _copy_field(f, hints))
        for action in parser._actions[before:]:
            action.default = argparse.SUPPRESS
        added.append(f.name)
    if legacy:
        old = [("--sampler", {"choices": ["maskgit", "moment"], "help": "old name: moment = --unmasking moment"}),
               ("--remasking", {"choices": ["low_confidence", "random", "ancestral"],
                                "help": "old name: random = --confidence random, ancestral = --unmasking ancestral"}),
               ("--choice-temperature", {"type": float, "help": "old name of --choice-noise (--moment-alpha with "
                                                               "--sampler moment)"})]
        for flag, kw in old:
            parser.add_argument(flag, default=argparse.SUPPRESS, **kw)
            added.append(flag[2:].replace("-", "_"))
        parser.add_argument("--constant-choice-noise", dest="choice_anneal", action="store_false",
                            default=argparse.SUPPRESS, help="old name of --no-choice-noise-anneal")
        added.append("choice_anneal")
    return added


def _copy_field(f: dataclasses.Field, hints: dict[str, Any]) -> dataclasses.Field:
    """A copy of ``f`` with its type resolved (HfArgumentParser rewrites the type of the field it is given)."""
    g = dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=dict(f.metadata))
    g.name, g.type = f.name, hints[f.name]
    return g


def given_settings(namespace: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The generation flags present in a namespace parsed with :func:`add_generation_arguments`."""
    return {k: getattr(namespace, k) for k in names if hasattr(namespace, k)}


__all__ = ["MDLMGenerationConfig", "SamplerConfig", "add_generation_arguments", "given_settings",
           "read_generation_dict", "UNMASKING", "CONFIDENCES", "CACHE_IMPLEMENTATIONS"]
