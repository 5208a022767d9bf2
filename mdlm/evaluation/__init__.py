"""Evaluation harness adapters.

``mdlm.evaluation.lm_eval_adapter`` needs the optional ``lm-eval`` package (``pip install "lm-eval>=0.4"``);
it is not imported here so that ``import mdlm.evaluation`` works without it.
"""
