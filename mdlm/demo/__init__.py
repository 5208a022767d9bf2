"""Watch it think: a terminal chat and a Gradio web demo that show the masked canvas filling in.

* :mod:`.stream` — the one adapter to the sampler: a run as per-step :class:`~.stream.Frame` snapshots.
* :mod:`.render` / :mod:`.pictures` — text canvases as pieces (░ = masked), image canvases as pictures.
* :mod:`.conversation` — multi-turn prompts trimmed to the context; :mod:`.terminal` — the terminal chat.
* :mod:`.limits`, :mod:`.models`, :mod:`.handlers`, :mod:`.web` — the web demo (needs ``pip install -e ".[demo]"``).
"""
