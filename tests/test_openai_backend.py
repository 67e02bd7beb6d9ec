"""The OpenAI-compatible backend against a real local server (`transformers serve`) on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import free_port
from harness.core.cache import GenerationCache
from harness.core.errors import SparError
from harness.core.generation import cached_generate
from harness.core.types import ChatRequest, SamplingParams


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    import httpx

    exe = shutil.which("transformers", path=os.path.dirname(sys.executable)) or shutil.which("transformers")
    if exe is None:
        pytest.skip("`transformers` CLI not installed (extra transformers[serving])")
    port = free_port()
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w")
    proc = subprocess.Popen([exe, "serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("transformers serve did not come up within 180 s")
    yield {"base_url": url + "/v1", "model": str(tiny_model_dir)}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_generates_through_the_cache(server, tmp_path):
    from harness.core.backends import make_backend

    backend = make_backend("openai", model=server["model"], base_url=server["base_url"], max_concurrency=2)
    reqs = [ChatRequest.user(f"hello {i}", sampling=SamplingParams(max_new_tokens=8), n=2) for i in range(3)]
    cache = GenerationCache(tmp_path / "c.sqlite")
    out, stats = cached_generate(backend, reqs, cache)
    assert stats.generated == 6 and all(len(row) == 2 for row in out)
    assert all(isinstance(c.text, str) and c.completion_tokens <= 8 for row in out for c in row)
    again, stats2 = cached_generate(backend, reqs, cache)
    assert stats2.cache_hits == 6 and again == out
    assert backend.describe()["api_key_env"] == "OPENAI_API_KEY"
    backend.close()


def test_api_key_never_recorded(server, monkeypatch):
    from harness.core.backends import make_backend

    monkeypatch.setenv("SPAR_TEST_KEY", "sk-secret-value")
    backend = make_backend("openai", model=server["model"], base_url=server["base_url"], api_key_env="SPAR_TEST_KEY")
    assert "sk-secret-value" not in repr(backend.describe())
    backend.close()


def test_unreachable_server_is_a_clear_error():
    from harness.core.backends import make_backend

    with pytest.raises(SparError, match="unreachable"):
        make_backend("openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=2)
