"""Model identity from the stat-keyed sha256 index (harness.core.identity_index): same identities as hashing every file,
no file read when nothing changed, only changed files reread, a corrupt index never breaks a run."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core import identity_index, models
from harness.core.errors import SparError
from harness.core.identity_index import INDEX_NAME, IdentityIndex
from harness.core.models import ResolvedModel, local_identity, local_identity_and_source, resolve_model

REPO = Path(__file__).resolve().parent.parent


def old_identity(path: Path) -> str:
    """The identity as computed before the index existed (every file read): the format must not change."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.name.endswith(models.WEIGHT_SUFFIXES))
    for p in files:
        digest.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    return "sha256:" + digest.hexdigest()


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("SPAR_CACHE_DIR", str(path))
    # files in these tests are hashed milliseconds after being written; the racy-entry guard would (rightly) not
    # trust such entries. Only test_racy_entries_are_rehashed keeps the real window.
    monkeypatch.setattr(identity_index, "RACY_WINDOW_NS", 0)
    return path


@pytest.fixture()
def ckpt(tmp_path) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    for i in range(3):
        (folder / f"model-0000{i + 1}-of-00003.safetensors").write_bytes(os.urandom(4096 + i))
    (folder / "tokenizer.json").write_text("{}")  # not part of the identity
    return folder


@pytest.fixture()
def reads(monkeypatch) -> list[str]:
    """Names of the files whose contents local_identity read."""
    seen: list[str] = []
    real = models.sha256_file

    def counting(path, *args, **kwargs):
        seen.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(models, "sha256_file", counting)
    return seen


def test_identity_matches_full_hash_cold_and_warm(cache, ckpt):
    expected = old_identity(ckpt)
    assert local_identity_and_source(ckpt) == (expected, "hashed")
    assert local_identity_and_source(ckpt) == (expected, "index")
    assert local_identity(ckpt, use_index=False) == expected
    assert (cache / INDEX_NAME).is_file()


def test_second_call_reads_no_file(cache, ckpt, reads):
    local_identity(ckpt)
    assert sorted(reads) == sorted(["config.json", *(p.name for p in ckpt.glob("*.safetensors"))])
    reads.clear()
    for _ in range(3):
        assert local_identity_and_source(ckpt) == (old_identity(ckpt), "index")
    assert reads == []


def test_same_size_rewrite_rehashes_only_that_file(cache, ckpt, reads):
    before = local_identity(ckpt)
    shard = ckpt / "model-00002-of-00003.safetensors"
    size = shard.stat().st_size
    shard.write_bytes(os.urandom(size))  # a retrained shard: same size, new bytes, in place (same inode)
    assert shard.stat().st_size == size
    reads.clear()
    after, source = local_identity_and_source(ckpt)
    assert reads == [shard.name]
    assert source == "hashed"
    assert after != before and after == old_identity(ckpt)
    reads.clear()
    assert local_identity_and_source(ckpt) == (after, "index") and reads == []


def test_mtime_change_alone_triggers_rehash(cache, ckpt, reads):
    before = local_identity(ckpt)
    config = ckpt / "config.json"
    st = config.stat()
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    reads.clear()
    assert local_identity_and_source(ckpt) == (before, "hashed")  # same bytes, so the same identity
    assert reads == ["config.json"]


def test_ctime_and_inode_are_part_of_the_key(cache, ckpt, reads):
    """New bytes of the same size with the old mtime put back (what `cp -p`, rsync -t or tar do): size and
    mtime_ns match the entry, ctime_ns (and for a replaced file the inode) do not."""
    before = local_identity(ckpt)
    shard = ckpt / "model-00001-of-00003.safetensors"
    st = shard.stat()
    shard.write_bytes(os.urandom(st.st_size))  # in place: same inode, new ctime
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = shard.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    reads.clear()
    changed = local_identity(ckpt)
    assert reads == [shard.name] and changed != before and changed == old_identity(ckpt)

    st = shard.stat()
    replacement = ckpt / "incoming.tmp"
    replacement.write_bytes(os.urandom(st.st_size))
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, shard)  # a new file (new inode) under the old name, old size and mtime
    assert shard.stat().st_ino != st.st_ino and shard.stat().st_mtime_ns == st.st_mtime_ns
    reads.clear()
    replaced = local_identity(ckpt)
    assert reads == [shard.name] and replaced not in (before, changed) and replaced == old_identity(ckpt)


def test_corrupt_index_falls_back_and_is_rebuilt(cache, ckpt, reads, capsys):
    expected = local_identity(ckpt)
    index = cache / INDEX_NAME
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    index.write_bytes(b"this is not an sqlite database" * 100)
    reads.clear()
    assert local_identity_and_source(ckpt) == (expected, "hashed")
    assert len(reads) == 4
    assert "unreadable" in capsys.readouterr().err
    reads.clear()
    assert local_identity_and_source(ckpt) == (expected, "index") and reads == []  # rebuilt, and used again


def test_corrupt_pages_and_index_path_taken_by_a_folder(cache, ckpt):
    expected = local_identity(ckpt)
    index = cache / INDEX_NAME
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    data = bytearray(index.read_bytes())
    data[100:] = os.urandom(len(data) - 100)  # valid header, garbage pages
    index.write_bytes(bytes(data))
    assert local_identity(ckpt) == expected
    shutil.rmtree(cache)
    (cache / INDEX_NAME).mkdir(parents=True)  # something else is sitting where the index goes
    assert local_identity(ckpt) == expected
    assert local_identity_and_source(ckpt) == (expected, "index")


def test_index_locked_by_another_writer(cache, ckpt, reads, monkeypatch, capsys):
    """A writer holding the index past the busy timeout costs a rehash, never an error or a lost index."""
    expected = local_identity(ckpt)
    shard = ckpt / "model-00001-of-00003.safetensors"
    shard.write_bytes(os.urandom(shard.stat().st_size))
    monkeypatch.setattr(identity_index, "BUSY_TIMEOUT_S", 0.05)
    holder = sqlite3.connect(cache / INDEX_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        reads.clear()
        changed, source = local_identity_and_source(ckpt)
        assert (changed, source, reads) == (old_identity(ckpt), "hashed", [shard.name]) and changed != expected
        assert "cannot record hashes (database is locked)" in capsys.readouterr().err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    reads.clear()
    assert local_identity(ckpt) == changed and reads == [shard.name]  # the other entries survived
    reads.clear()
    assert local_identity_and_source(ckpt) == (changed, "index") and reads == []


def test_racy_entries_are_rehashed(cache, ckpt, reads, monkeypatch):
    """A file hashed right after it was written is not trusted (it could change again within the timestamp
    granularity); once an entry was hashed long enough after the last write it is."""
    monkeypatch.setattr(identity_index, "RACY_WINDOW_NS", 2_000_000_000)
    expected = local_identity(ckpt)
    reads.clear()
    assert local_identity_and_source(ckpt) == (expected, "hashed") and len(reads) == 4
    real_now = identity_index._now_ns
    monkeypatch.setattr(identity_index, "_now_ns", lambda: real_now() + 5_000_000_000)  # as if hashed 5 s later
    local_identity(ckpt)
    monkeypatch.setattr(identity_index, "_now_ns", real_now)
    reads.clear()
    assert local_identity_and_source(ckpt) == (expected, "index") and reads == []


def test_file_changing_while_hashed_is_not_recorded(cache, tmp_path):
    target = tmp_path / "growing.bin"
    target.write_bytes(b"abc")
    index = IdentityIndex(cache / INDEX_NAME)

    def hash_then_append(path: str) -> str:
        sha = models.sha256_file(path)
        with open(path, "ab") as fh:
            fh.write(b"more")
        return sha

    digests = index.sha256_many([target], hash_then_append)
    assert digests.hashed == [str(target.resolve())]
    assert index.entries() == {}


def test_symlinked_folder_shares_entries_and_gone_files_are_pruned(cache, ckpt, tmp_path, reads):
    local_identity(ckpt)
    link = tmp_path / "link"
    link.symlink_to(ckpt, target_is_directory=True)
    reads.clear()
    assert local_identity_and_source(link) == (old_identity(ckpt), "index") and reads == []
    index = IdentityIndex(cache / INDEX_NAME)
    assert len(index.entries()) == 4
    (ckpt / "model-00003-of-00003.safetensors").unlink()
    (ckpt / "config.json").write_text('{"model_type": "llama", "retrained": true}')
    assert local_identity(ckpt) == old_identity(ckpt)
    assert sorted(Path(p).name for p in index.entries()) == [
        "config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"]


def test_two_processes_at_once(cache, tmp_path):
    folders = []
    for n in range(3):
        folder = tmp_path / f"m{n}"
        folder.mkdir()
        (folder / "config.json").write_text(f'{{"n": {n}}}')
        (folder / "model.safetensors").write_bytes(os.urandom(2048))
        folders.append(folder)
    script = ("import sys; from harness.core import identity_index as ix; ix.RACY_WINDOW_NS = 0\n"
              "from harness.core.models import local_identity\n"
              "for _ in range(15):\n"
              "    print(' '.join(local_identity(__import__('pathlib').Path(p)) for p in sys.argv[1:]))\n")
    env = dict(os.environ, SPAR_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", script, *map(str, folders)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO)) for _ in range(2)]
    expected = " ".join(old_identity(f) for f in folders)
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert err == ""
        assert out.splitlines() == [expected] * 15
    with sqlite3.connect(cache / INDEX_NAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == 6


def test_identity_source_of_each_kind(cache, ckpt, tmp_path, monkeypatch):
    first, second = resolve_model(str(ckpt)), resolve_model(str(ckpt))
    assert (first.source, first.identity_source) == ("local", "hashed")
    assert (second.source, second.identity_source) == ("local", "index")
    assert first.identity == second.identity == old_identity(ckpt)
    assert second.to_dict() == {"spec": str(ckpt), "path": str(ckpt.resolve()), "identity": second.identity,
                                "source": "local", "identity_source": "index"}

    monkeypatch.setattr(models, "_embedded_gguf", lambda: tmp_path / "fake.gguf")
    monkeypatch.setattr(models, "embedded_checkpoint", lambda: ckpt)
    embedded = resolve_model("smollm2")
    assert (embedded.source, embedded.identity_source) == ("embedded-gguf", "gguf")
    assert embedded.identity == f"gguf-sha256:{models.EMBEDDED_GGUF_SHA256}"

    calls = []
    snapshot = tmp_path / "hub" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs.get("revision")))
        return str(snapshot)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    hub = resolve_model("org/model")
    pinned = resolve_model("org/model", revision="v1.0")
    assert calls == [("org/model", None), ("org/model", "v1.0")]
    assert (hub.source, hub.identity_source, hub.identity) == ("hub", "hub", "hub:org/model@0123abcd")
    assert pinned.identity == "hub:org/model@0123abcd"

    legacy = ResolvedModel("m", "m", "m", "local")  # existing four-argument callers still work
    assert legacy.identity_source == "" and legacy.to_dict()["identity_source"] == ""


def test_revision_is_an_error_for_local_folders_and_the_embedded_model(cache, ckpt, monkeypatch):
    with pytest.raises(SparError, match="--model-revision applies to hub ids and served models, not to local folder"):
        resolve_model(str(ckpt), revision="main")
    with pytest.raises(SparError, match="not to the embedded model smollm2"):
        resolve_model("smollm2", revision="main")
    assert resolve_model(str(ckpt), revision=None).identity == old_identity(ckpt)
    assert resolve_model(str(ckpt), revision="").identity == old_identity(ckpt)  # an unset config field
