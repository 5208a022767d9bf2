"""Ablation grids as data: a YAML file of parts and axes (:mod:`.grid`) run by one runner (:mod:`.runner`),
each part writing a markdown table, a plot and ``results.json`` (:mod:`.report`). The grids of the committed
results are in ``eval/ablations/``; the command line is ``eval/ablate.py``."""
