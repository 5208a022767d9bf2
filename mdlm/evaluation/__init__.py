"""Evaluation: every measure the project reports, in one package (the eval/ scripts are thin command lines
over it).

* ``elbo`` — the Monte-Carlo NELBO (the reported bound: nats/token, bits/token, perplexity bound);
* ``genppl``, ``text_scoring``, ``text_samples`` — generative perplexity + unigram entropy under a judge LM,
  the text samples they score;
* ``classifier``, ``fid``, ``inception``, ``reconstruction``, ``image_scoring`` — classifier-FID (Fashion-MNIST
  CNN features), class accuracy, reconstruction PSNR, and scoring image samples against reference sets;
* ``sft`` — response ELBO and answer-format share of instruction-tuned models;
* ``lm_eval_adapter`` — lm-evaluation-harness tasks through the ELBO (needs the optional ``lm-eval``);
* ``ablation`` — ablation grids read from YAML (one runner, tables and plots);
* ``benchmark_models``, ``files`` — random models of the benchmark sizes; atomic result files.

Nothing heavy is imported here, so ``import mdlm.evaluation`` works without the optional packages.
"""
