"""The ablations behind eval/ablate.py (the CLI entry point), one module per part.

presets          the sampler strategies, the quick/full grids and the training-recipe arguments
text_sampling    text: steps × schedule × strategy, scored by a judge LM (genppl + unigram entropy)
text_training    text: short recipes/train_text.py runs, schedule × weighting × t_min (validation NELBO)
image_common     images: image_sample_eval options, the scorer, reference points, shared table/plot pieces
image_sampling   images: steps × schedule × strategy (classifier-FID + class accuracy)
cfg              images: classifier-free guidance none / constant / τ-intervals, with NFE per image
image_training   images: short recipes/train_image.py runs, schedule × weighting × t_min (NELBO + FID)
image_parts      images: running the image parts with one checkpoint load and one scorer
common           recipe loading, seeding and memory release shared by the training grids
report           markdown + plot files, results.json, --replot
"""
