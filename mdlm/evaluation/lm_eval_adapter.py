"""An EleutherAI lm-evaluation-harness model ("mdlm") for masked-diffusion checkpoints.

Log-likelihood tasks are scored through the ELBO, as LLaDA does: a masked-diffusion model has no
exact autoregressive log-likelihood, so ``log p(continuation | context)`` is replaced by minus the
Monte-Carlo NELBO of :func:`mdlm.evaluation.elbo.elbo_nll` with only the continuation eligible for masking
(the context is never masked). It is a lower bound on the log-likelihood in expectation, summed
over the continuation's tokens, in nats.

    import lm_eval
    from lm_eval.tasks import TaskManager
    from mdlm.evaluation.lm_eval_adapter import MDLMEvalLM

    lm = MDLMEvalLM(pretrained="runs/shakespeare_tiny", mc_num=8)
    lm_eval.simple_evaluate(model=lm, tasks=["my_task"], task_manager=TaskManager(include_path="tasks/"))

or by name once this module is imported: ``simple_evaluate(model="mdlm", model_args="pretrained=DIR")``.
``eval/lm_eval_run.py`` is the command-line front end.

Choices made here:
  * ``loglikelihood``: K = ``mc_num`` samples with stratified masked counts (see ``mdlm/evaluation/elbo.py``);
    the random generator is re-seeded with ``seed`` at every batch, so a run is deterministic for a
    fixed request list, batch size and seed. Requests are scored in batches of ``batch_size``,
    sequences laid out ``[pad …][context][continuation]`` (left padding, as
    ``mdlm.pipelines.text.build_text_canvas``). A context longer than the model's context window
    is truncated from the left; a continuation longer than the window keeps its last tokens.
  * ``is_greedy``: an approximation — True when the one-step argmax of the model with the whole
    continuation masked equals the continuation at every position. (Diffusion decoding is
    iterative, so this is neither necessary nor sufficient for the sampler to produce it.)
  * ``loglikelihood_rolling``: the text is split into disjoint windows of the model's context
    length and the minus-NELBOs of the windows (all positions eligible) are summed; windows do not
    condition on each other.
  * ``generate_until``: :func:`mdlm.pipelines.text.generate_text` with the checkpoint's sampler
    defaults (``generation_config.json``); ``max_gen_toks`` (if given) sets the generated length and
    ``temperature`` (if given) overrides the default; the text is cut at the first ``until`` string.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from .elbo import elbo_nll
from ..pipelines.loading import load_for_generation
from ..pipelines.text import generate_text, sampler_config_from
from ..sampling import as_logits_fn

log = logging.getLogger(__name__)


def _split_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """Move trailing whitespace of the context onto the continuation (it tokenizes with the word)."""
    n = len(context) - len(context.rstrip())
    if n:
        return context[:-n], context[-n:] + continuation
    return context, continuation


@register_model("mdlm")
class MDLMEvalLM(LM):
    """lm-eval ``LM`` over an mdlm checkpoint dir (or LoRA adapter dir)."""

    def __init__(
        self,
        pretrained: str,
        device: str | None = None,
        batch_size: int | str = 8,
        mc_num: int = 8,
        seed: int = 0,
        max_length: int | None = None,
        dtype: str | None = None,
        max_batch_size: int | None = None,  # passed by lm-eval's CLI; unused
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if kwargs:
            log.warning("MDLMEvalLM ignores unknown arguments: %s", ", ".join(sorted(kwargs)))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype not in ("auto", "") else None
        loaded = load_for_generation(str(pretrained), device=device, dtype=torch_dtype)
        if loaded.tokenizer is None or loaded.tokenizer.mask_token_id is None:
            raise ValueError(f"{pretrained} has no tokenizer with a [MASK] token")
        self.model, self.tokenizer, self.defaults = loaded.model, loaded.tokenizer, loaded.defaults
        self._device = torch.device(device)
        self.batch_size = 8 if str(batch_size).startswith("auto") else int(batch_size)
        self.mc_num = int(mc_num)
        if self.mc_num < 1 or self.batch_size < 1:
            raise ValueError(f"mc_num and batch_size must be ≥ 1, got {mc_num}, {batch_size}")
        self.seed = int(seed)
        ctx = getattr(getattr(self.model, "config", None), "max_position_embeddings", None) or 1024
        self.max_length = int(max_length or ctx)
        self.mask_id = self.tokenizer.mask_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.mask_id  # pad positions are attention-masked anyway
        self._logits_fn = as_logits_fn(self.model)
        self.pretrained = str(pretrained)

    # -- lm-eval plumbing ----------------------------------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return self.pretrained.replace("/", "__")

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _generator(self) -> torch.Generator:
        return torch.Generator(device=self._device).manual_seed(self.seed)

    # -- scoring -------------------------------------------------------------------------------------
    @torch.no_grad()
    def _score(self, pairs: list[tuple[list[int], list[int]]], greedy: bool) -> list[tuple[float, bool]]:
        """(context ids, continuation ids) → (−NELBO of the continuation, one-step greedy match)."""
        out: list[tuple[float, bool]] = []
        for b in range(0, len(pairs), self.batch_size):
            chunk = []
            for ctx, cont in pairs[b : b + self.batch_size]:
                if len(cont) > self.max_length:
                    cont = cont[-self.max_length :]
                ctx = ctx[max(0, len(ctx) - (self.max_length - len(cont))) :]
                chunk.append((ctx, cont))
            L = max(len(c) + len(x) for c, x in chunk)
            B = len(chunk)
            ids = torch.full((B, L), self.pad_id, dtype=torch.long)
            attn = torch.zeros(B, L, dtype=torch.long)
            elig = torch.zeros(B, L, dtype=torch.bool)
            for i, (ctx, cont) in enumerate(chunk):  # [pad …][context][continuation]
                n = len(ctx) + len(cont)
                if n:
                    ids[i, L - n :] = torch.tensor(ctx + cont, dtype=torch.long)
                attn[i, L - n :] = 1
                elig[i, L - len(cont) :] = len(cont) > 0
            ids, attn, elig = ids.to(self._device), attn.to(self._device), elig.to(self._device)
            res = elbo_nll(self._logits_fn, ids, eligible=elig, mask_id=self.mask_id, attention_mask=attn,
                           num_samples=self.mc_num, generator=self._generator())
            match = torch.ones(B, dtype=torch.bool, device=self._device)
            if greedy:
                logits = self._logits_fn(ids.masked_fill(elig, self.mask_id), attn).float()  # (B, L, V)
                if 0 <= self.mask_id < logits.shape[-1]:
                    logits[..., self.mask_id] = float("-inf")
                pred = logits.argmax(-1)
                match = ((pred == ids) | ~elig).all(dim=1)
            out += [(-float(nll), bool(m)) for nll, m in zip(res.nll_sum.cpu(), match.cpu())]
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = []
        for req in requests:
            context, continuation = _split_trailing_space(*req.args)
            pairs.append((self._encode(context), self._encode(continuation)))
        results = self._score(pairs, greedy=True)
        for req, r in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", req.args, r)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        results = []
        for req in requests:
            ids = self._encode(req.args[0])
            windows = [([], ids[i : i + self.max_length]) for i in range(0, len(ids), self.max_length)]
            total = sum(ll for ll, _ in self._score(windows, greedy=False)) if windows else 0.0
            results.append(total)
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return results

    # -- generation ----------------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        results: list[str] = []
        for req in requests:
            context, gen_kwargs = req.args
            gen_kwargs = dict(gen_kwargs or {})
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            overrides = {"temperature": gen_kwargs.get("temperature")}
            if gen_kwargs.get("do_sample") is False:
                overrides["temperature"] = 0.0
            config, gen_length = sampler_config_from(self.defaults, overrides)
            gen_length = int(gen_kwargs.get("max_gen_toks", gen_length))
            gen_length = max(1, min(gen_length, self.max_length - 1))
            ctx = self._encode(context)
            room = self.max_length - gen_length
            while len(ctx) > room:  # keep the end of the context (re-encoding may shift token counts)
                ctx = self._encode(self.tokenizer.decode(ctx[len(ctx) - room :]))
                room -= 1
            context = self.tokenizer.decode(ctx) if ctx else ""
            texts, _ = generate_text(self.model, self.tokenizer, [context], config, gen_length, seed=self.seed,
                                     max_length=self.max_length)
            text = texts[0]
            for stop in until:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            results.append(text)
            self.cache_hook.add_partial("generate_until", req.args, text)
        return results
