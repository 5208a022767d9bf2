"""Any Hugging Face causal LM as the denoiser of a masked-diffusion LM (AR → MDM adaptation).

``CausalBackboneForMaskedLM`` holds an ``AutoModelForCausalLM`` (Llama, Qwen2, GPT-2, …) unchanged and runs it
**bidirectionally** through transformers' own attention interface: every forward passes ``is_causal=False``
(transformers 5.x builds a non-causal mask from the padding mask for every attention implementation; no
modeling code is forked). Its logits come back aligned so that **position i predicts token i**, whatever the
convention the weights were trained with, so the loss, the ELBO and the sampler need no special case:

* ``logit_alignment="llada"`` — LLaDA / DiffuGPT-style: the output at position i predicts token i. The AR head's
  next-token alignment is discarded and must be re-learnt by the adaptation.
* ``logit_alignment="dream"`` — Dream-style shifted logits (Ye et al. 2025, "Dream 7B"): the output at position
  i−1 predicts token i, which keeps the AR head's alignment, so an un-adapted model already starts as its source.
  A separator column (``shift_token_id``, e.g. ``<|endoftext|>``) is put before token 0 inside ``forward`` (before the
  first real token of a left-padded row) so that token 0 also has a predecessor; it is never masked and its output
  is dropped. Positions shift by one with it.

The choice is stored in ``config.json`` (``logit_alignment``, ``shift_token_id``) with the backbone's own config
(``backbone_config``), so ``AutoModelForMaskedLM.from_pretrained(dir)`` rebuilds the same model.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .modeling import select_rows
from .padding import default_position_ids

Tensor = torch.Tensor
ALIGNMENTS = ("llada", "dream")
# keys of the backbone's config that say where/how it was loaded, not what it is: left out of config.json so that
# the same source gives the same config (and adapter base fingerprint) on every machine and path
VOLATILE_CONFIG_KEYS = ("_name_or_path", "_model_name_or_path", "transformers_version", "architectures", "dtype",
                        "torch_dtype", "quantization_config", "_attn_implementation_autoset")


# causal-LM heads that are a plain linear map of the body's last hidden state (Gemma-2's soft-capping, Cohere's
# logit scale … are not): for these the LM head can run at chosen positions only
PLAIN_HEAD_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gpt2", "smollm3")


class CausalBackboneConfig(PretrainedConfig):
    """Config of :class:`CausalBackboneForMaskedLM`: the causal LM's config plus the diffusion fields."""

    model_type = "mdlm_causal"
    sub_configs = {"backbone_config": AutoConfig}

    def __init__(
        self,
        backbone_config: PretrainedConfig | dict | None = None,
        logit_alignment: str = "llada",
        mask_token_id: int | None = None,
        shift_token_id: int | None = None,
        **kwargs,
    ):
        if isinstance(backbone_config, dict):
            backbone_config = AutoConfig.for_model(**backbone_config)
        if logit_alignment not in ALIGNMENTS:
            raise ValueError(f"logit_alignment must be one of {', '.join(ALIGNMENTS)}, got {logit_alignment!r}")
        if logit_alignment == "dream" and shift_token_id is None and backbone_config is not None:
            raise ValueError("logit_alignment 'dream' needs shift_token_id (the separator prepended before token 0)")
        self.backbone_config = backbone_config
        self.logit_alignment = logit_alignment
        self.mask_token_id = mask_token_id
        self.shift_token_id = shift_token_id
        self.is_causal = False  # read by the recipes' reports: this is a bidirectional denoiser
        kwargs.setdefault("tie_word_embeddings", False)  # the backbone ties its own weights, if at all
        super().__init__(**kwargs)
        if backbone_config is not None:
            for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
                if getattr(self, key, None) is None:
                    setattr(self, key, getattr(backbone_config, key, None))

    def to_dict(self) -> dict:
        out = super().to_dict()
        if isinstance(out.get("backbone_config"), dict):
            out["backbone_config"] = {k: v for k, v in out["backbone_config"].items() if k not in VOLATILE_CONFIG_KEYS}
        return out

    @property
    def vocab_size(self) -> int | None:
        return None if self.backbone_config is None else self.backbone_config.vocab_size

    @property
    def hidden_size(self) -> int | None:
        return None if self.backbone_config is None else self.backbone_config.hidden_size

    @property
    def num_hidden_layers(self) -> int | None:
        return None if self.backbone_config is None else self.backbone_config.num_hidden_layers

    @property
    def max_position_embeddings(self) -> int | None:
        """Longest canvas the model takes (one less with the Dream separator column)."""
        c = self.backbone_config
        n = None if c is None else getattr(c, "max_position_embeddings", None) or getattr(c, "n_positions", None)
        return None if n is None else n - (self.logit_alignment == "dream")


class CausalBackboneForMaskedLM(PreTrainedModel):
    """A causal LM run bidirectionally as a masked-diffusion denoiser (see the module docstring).

    ``forward(input_ids (B, L), attention_mask (B, L) | None, position_ids (B, L) | None)`` →
    ``MaskedLMOutput(logits (B, L, V))`` with row i scoring token i. There is no K/V-cache interface
    (``supports_block_kv_cache`` is False): the sampler's cache modes refuse this model with one error line.
    With a plain LM head (``supports_logits_window``) the sampler gets the logits of its block window only, as
    from ``MDLMForMaskedLM`` (no cache, CUDA graphs captured once per generation).
    """

    config_class = CausalBackboneConfig
    base_model_prefix = "lm"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules: list[str] = []

    def __init__(self, config: CausalBackboneConfig, lm: PreTrainedModel | None = None):
        super().__init__(config)
        if lm is None:
            lm = AutoModelForCausalLM.from_config(config.backbone_config)
        self.lm = lm
        if getattr(lm.config, "_attn_implementation", None) is None:
            # a new outer config resets its sub-configs' attention implementation; without one, transformers
            # builds no mask at all (neither causal nor padding)
            lm.config._attn_implementation = getattr(config, "_attn_implementation", None) or "sdpa"
        self._no_split_modules = list(getattr(lm, "_no_split_modules", None) or [])
        # DiffuLLaMA's attention-mask annealing while training: (ratio, generator) set per step by
        # mdlm.adapt.anneal.AttentionAnnealCallback; None = bidirectional (always so in eval mode)
        self.attention_anneal: tuple[float, torch.Generator] | None = None
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        pass  # the backbone's weights come from the source LM (or its own initialiser)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.lm.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.lm.set_input_embeddings(value)

    def get_output_embeddings(self) -> torch.nn.Module | None:
        return self.lm.get_output_embeddings()

    def set_output_embeddings(self, value: torch.nn.Module) -> None:
        self.lm.set_output_embeddings(value)

    def _with_separator(self, ids: Tensor, am: Tensor | None, pos: Tensor | None):
        """Insert the Dream separator right before each row's first real token: ids/mask/positions (B, L) → (B, L + 1).
        Column 0 is new; for a left-padded row the separator takes the last padding column instead, so that the
        first real token's predecessor is always the separator (padded and unpadded rows give the same logits)."""
        ext = torch.cat([ids[:, :1], ids], dim=1)  # (B, L + 1)
        if am is None:
            ext[:, 0] = int(self.config.shift_token_id)
            pos = None if pos is None else torch.cat([torch.zeros_like(pos[:, :1]), pos + 1], dim=1)
            return ext, None, pos
        first = am.long().argmax(dim=1)  # (B,) first real column of the row (0 without left padding)
        sep = torch.arange(ext.shape[1], device=ids.device)[None, :] == first[:, None]  # (B, L + 1)
        # masked_fill with a Python scalar: no host-to-device copy (an indexed assignment would make one, which a
        # CUDA-graph capture refuses)
        ext = ext.masked_fill(sep, int(self.config.shift_token_id))
        am = torch.cat([torch.zeros_like(am[:, :1]), am], dim=1).masked_fill(sep, 1)
        pos = default_position_ids(ext, am)  # (B, L + 1): separator 0, tokens 1, 2, …
        return ext, am, pos

    def _prepared_mask(self, allowed: Tensor) -> Tensor:
        """A (B, 1, Lq|1, L) bool mask (True = may attend) in the form the backbone's attention takes a prepared 4-D
        mask: bool for SDPA, additive float for eager attention. transformers passes a 4-D mask through as it is (it
        builds none: no host-to-device copy, so a sampler step can be captured as a CUDA graph)."""
        if self._attn_impl == "sdpa":
            return allowed
        dtype = self.get_input_embeddings().weight.dtype
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed,
                                                                                          torch.finfo(dtype).min)

    @property
    def _attn_impl(self) -> str:
        return getattr(self.lm.config, "_attn_implementation", None) or "sdpa"

    def _attention_mask(self, ids: Tensor, am: Tensor | None) -> Tensor | None:
        """What the backbone gets as ``attention_mask`` for ids (B, L') and their (B, L') padding mask: while training
        under attention-mask annealing the (B, 1, L', L') annealed mask (``mdlm.adapt.anneal``); else, with padding
        and an SDPA / eager backbone, the prepared (B, 1, 1, L') key-padding mask; else ``am`` as given (no padding,
        or another attention implementation, which builds its own mask from it)."""
        if self.training and self.attention_anneal is not None:
            from ..adapt.anneal import annealed_attention_mask

            if self._attn_impl not in ("sdpa", "eager"):
                raise ValueError(f"attention-mask annealing needs sdpa or eager attention, not {self._attn_impl!r} "
                                 "(it passes a 4-D mask); set attn_implementation='sdpa'")
            ratio, gen = self.attention_anneal
            return self._prepared_mask(annealed_attention_mask(ids.shape[0], ids.shape[1], ratio, key_padding=am,
                                                               generator=gen, device=ids.device))
        if am is None or self._attn_impl not in ("sdpa", "eager"):
            return am
        return self._prepared_mask(am.bool()[:, None, None, :])

    @property
    def supports_logits_positions(self) -> bool:
        """True when the source LM's logits are its LM head applied to the body's last hidden state (no soft-capping
        or scaling in between), so ``forward(logits_positions=...)`` runs the head at those positions only."""
        return getattr(self.lm.config, "model_type", None) in PLAIN_HEAD_MODEL_TYPES

    @property
    def supports_logits_window(self) -> bool:
        """The sampler's window interface (as ``MDLMForMaskedLM``): ``logits_positions`` as a slice of columns or flat
        indices, a (B, 1, 1, L) bool key-padding mask accepted. Needs a plain LM head."""
        return self.supports_logits_positions

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        logits_positions: Tensor | slice | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """Logits (B, L, V), row i scoring token i under both conventions. ``logits_positions`` (needs a plain LM head
        for anything but a bool mask, see ``supports_logits_positions``): (B, L) bool → those rows as (M, V) in
        row-major order (the training loss needs the masked positions only); (M,) int64 flat indices b·L + l → (M, V)
        (no host synchronisation); a ``slice`` of columns → (B, W, V) (the sampler's block window).
        ``attention_mask``: (B, L) 1 = token / 0 = padding, or the sampler's (B, 1, 1, L) bool key-padding mask."""
        attention_mask = _padding_mask(attention_mask)
        window = logits_positions is not None and (isinstance(logits_positions, slice)
                                                   or logits_positions.dtype != torch.bool)
        if window and not self.supports_logits_positions:
            raise ValueError(f"logits_positions as a slice / flat indices needs a plain LM head; "
                             f"{self.lm.config.model_type!r} is not one of {', '.join(PLAIN_HEAD_MODEL_TYPES)}")
        if position_ids is None and attention_mask is not None:  # left padding: positions count real tokens only
            position_ids = default_position_ids(input_ids, attention_mask)  # (B, L)
        dream = self.config.logit_alignment == "dream"
        ids, am, pos = self._with_separator(input_ids, attention_mask, position_ids) if dream else (
            input_ids, attention_mask, position_ids)
        am = self._attention_mask(ids, am)  # (B, L[+1]), a prepared (B, 1, 1|L[+1], L[+1]) mask, or None
        if logits_positions is not None and self.supports_logits_positions:  # the body, then the head where asked
            h = self.lm.base_model(input_ids=ids, attention_mask=am, position_ids=pos, is_causal=False,
                                   use_cache=False).last_hidden_state  # (B, L[+1], H)
            h = h[:, :-1] if dream else h  # (B, L, H): row i scores token i
            return MaskedLMOutput(logits=self.lm.get_output_embeddings()(select_rows(h, logits_positions)))
        out = self.lm(input_ids=ids, attention_mask=am, position_ids=pos, is_causal=False, use_cache=False)
        logits = out.logits[:, :-1] if dream else out.logits  # (B, L, V): row i scores token i
        return MaskedLMOutput(logits=logits if logits_positions is None else logits[logits_positions])


def _padding_mask(attention_mask: Tensor | None) -> Tensor | None:
    """(B, L) padding mask as given, or the sampler's (B, 1, 1, L) bool key-padding mask → (B, L) long; any other
    shape (a full 4-D mask) is refused with its shape."""
    if attention_mask is None or attention_mask.dim() == 2:
        return attention_mask
    if attention_mask.dim() == 4 and attention_mask.dtype == torch.bool and attention_mask.shape[1:3] == (1, 1):
        return attention_mask[:, 0, 0, :].long()  # (B, L)
    raise ValueError("CausalBackboneForMaskedLM takes a (B, L) or (B, 1, 1, L) bool padding mask, "
                     f"not a mask of shape {tuple(attention_mask.shape)}")


def check_bidirectional(model: CausalBackboneForMaskedLM) -> None:
    """Raise RuntimeError unless the installed transformers honours ``is_causal=False`` for this backbone:
    changing the last token must change the logits at the first position (one tiny forward)."""
    dev = next(model.parameters()).device
    vocab = model.get_input_embeddings().num_embeddings
    x = torch.arange(6, device=dev)[None] % vocab  # (1, 6)
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % vocab
    was = model.training
    model.eval()
    with torch.no_grad():
        a, b = model(input_ids=x).logits[0, 0], model(input_ids=y).logits[0, 0]
    model.train(was)
    if torch.equal(a, b):
        import transformers

        raise RuntimeError(
            f"transformers {transformers.__version__} ran {type(model.lm).__name__} causally despite is_causal=False; "
            "bidirectional attention needs a transformers 5.x that honours it for this architecture"
        )


def register() -> None:
    from transformers import AutoModelForMaskedLM

    AutoConfig.register("mdlm_causal", CausalBackboneConfig, exist_ok=True)
    AutoModelForMaskedLM.register(CausalBackboneConfig, CausalBackboneForMaskedLM, exist_ok=True)


register()
