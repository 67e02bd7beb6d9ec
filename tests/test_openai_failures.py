"""The OpenAI-compatible backend against misbehaving servers: small stdlib HTTP servers on loopback, in threads.

Every server here is stopped by the test that made it; every call that could hang runs under `bounded`, which fails
the test (instead of hanging it) when the call has not finished within a generous bound.
"""

from __future__ import annotations

import base64
import json
import math
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from conftest import free_port
from harness.core.backends.openai_compat import OpenAIBackend, redact_url
from harness.core.cache import GenerationCache
from harness.core.errors import SparError
from harness.core.generation import cached_generate
from harness.core.types import ChatRequest, SamplingParams

FAST = {"backoff_s": 0.01, "timeout_s": 10.0}  # tests never wait on real backoff


@dataclass
class Req:
    method: str
    path: str
    headers: dict
    raw: bytes
    index: int = 0  # 1-based number of this chat request on its server

    @property
    def body(self) -> dict:
        return json.loads(self.raw)


def answer(text: str, **extra: Any) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}, **extra}


def echo_seed(req: Req, server: "FakeServer") -> tuple[int, Any]:
    return 200, answer(f"seed={req.body['seed']}")


@dataclass
class FakeServer:
    """POST .../chat/completions answers `app(req, server)`: (status, dict | str | bytes), or None when the app wrote
    the response itself through `server.handler`. GET .../models answers `models_status`."""

    app: Callable[[Req, "FakeServer"], Any] = echo_seed
    models_status: int = 200
    chat: list[Req] = field(default_factory=list)
    gets: list[Req] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.local = threading.local()
        self.connections: list[socket.socket] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.connections.append(self.connection)

            def do_GET(self) -> None:
                outer._handle(self, "GET")

            def do_POST(self) -> None:
                outer._handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def handler(self) -> BaseHTTPRequestHandler:
        return self.local.handler

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("content-length") or 0)
        req = Req(method, h.path, {k.lower(): v for k, v in h.headers.items()}, h.rfile.read(length) if length else b"")
        self.local.handler = h
        try:
            if method == "GET":
                with self.lock:
                    self.gets.append(req)
                result = (self.models_status, {"object": "list", "data": []})
            else:
                with self.lock:
                    self.chat.append(req)
                    req.index = len(self.chat)
                result = self.app(req, self)
            if result is not None:
                status, payload = result
                data = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                h.send_response(status)
                h.send_header("Content-Type", "application/json" if isinstance(payload, dict) else "text/html")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
        except OSError:  # the client went away (deadline, abort): nothing more to say
            h.close_connection = True

    def drip(self, data: bytes, every_s: float = 1.0) -> None:
        """Write `data` one byte at a time until it is all sent, the client leaves, or the server stops."""
        for i in range(len(data)):
            self.handler.wfile.write(data[i:i + 1])
            self.handler.wfile.flush()
            if self.stop.wait(every_s):
                break
        self.handler.close_connection = True

    def close(self) -> None:
        """Stop listening and drop every open connection (kept-alive ones too): the server is gone."""
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
        with self.lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def serve():
    servers: list[FakeServer] = []

    def make(app: Callable[[Req, FakeServer], Any] = echo_seed, models_status: int = 200) -> FakeServer:
        server = FakeServer(app, models_status)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def backend():
    opened: list[OpenAIBackend] = []

    def make(base_url: Any, **kw: Any) -> OpenAIBackend:
        b = bounded(lambda: OpenAIBackend("test-model", base_url=base_url, **{**FAST, **kw}))
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def bounded(fn: Callable[[], Any], within_s: float = 30.0) -> Any:
    """fn() run on a thread; the test fails if it has not finished within `within_s` (it never hangs the suite)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within_s)
    assert not thread.is_alive(), f"still running after {within_s} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def reqs(count: int, n: int = 1, seed: int = 100) -> list[ChatRequest]:
    return [ChatRequest.user(f"prompt {i}", sampling=SamplingParams(max_new_tokens=4), seed=seed + 10 * i, n=n)
            for i in range(count)]


def generate_error(b: OpenAIBackend, requests: list[ChatRequest], within_s: float = 30.0) -> str:
    with pytest.raises(SparError) as info:
        bounded(lambda: b.generate(requests), within_s)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the ordinary path ------------------------------------------------------------------------------------------

def test_one_request_per_sample_with_seed_plus_sample_index(serve, backend):
    server = serve()
    b = backend(server.url, max_concurrency=3)
    out = bounded(lambda: b.generate(reqs(3, n=2)))
    assert [[c.text for c in row] for row in out] == [[f"seed={100 + 10 * i + j}" for j in range(2)] for i in range(3)]
    assert out[0][0].prompt_tokens == 3 and out[0][0].completion_tokens == 2
    assert len(server.chat) == 6 and all(r.body["n"] == 1 and r.body["model"] == "test-model" for r in server.chat)


# --- 1. a 200 whose body is not an answer -----------------------------------------------------------------------

def test_non_json_200_is_retried_then_a_one_line_error_with_what_was_sent(serve, backend):
    server = serve(lambda req, s: (200, "<html>\n<body>oops, a proxy page</body>\n</html>"))
    b = backend(server.url, max_retries=2)
    message = generate_error(b, reqs(1))
    assert len(server.chat) == 3  # the first attempt and 2 retries
    assert "not JSON" in message and "oops, a proxy page" in message and server.url in message
    assert "after 3 attempts" in message


def test_a_huge_bad_body_is_truncated_in_the_error(serve, backend):
    server = serve(lambda req, s: (200, "x" * 50_000))
    message = generate_error(backend(server.url, max_retries=0), reqs(1))
    assert "not JSON" in message and len(message) < 800 and "50000 bytes" in message


def test_garbage_once_then_a_good_answer_succeeds(serve, backend):
    server = serve(lambda req, s: (200, "garbage") if req.index == 1 else echo_seed(req, s))
    out = bounded(lambda: backend(server.url, max_retries=2).generate(reqs(1)))
    assert out[0][0].text == "seed=100" and len(server.chat) == 2


@pytest.mark.parametrize("payload", [{"object": "error", "message": "model overloaded"}, {"choices": []},
                                     {"choices": [{"text": "completion-style"}]}, [1, 2]])
def test_json_without_choices_message_is_retried_then_an_error(serve, backend, payload):
    server = serve(lambda req, s: (200, json.dumps(payload)))
    message = generate_error(backend(server.url, max_retries=1), reqs(1))
    assert len(server.chat) == 2
    assert "without choices[0].message" in message and json.dumps(payload)[:10] in message


def test_other_client_errors_are_not_retried_and_quote_the_server(serve, backend):
    server = serve(lambda req, s: (400, {"error": {"message": "maximum context length is 2048 tokens"}}))
    message = generate_error(backend(server.url, max_retries=3), reqs(1))
    assert len(server.chat) == 1 and "HTTP 400" in message and "maximum context length" in message


# --- 2. timeout_s is a deadline for the whole request -----------------------------------------------------------

def drip_body(req: Req, server: FakeServer) -> None:
    h = server.handler
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "10000")
    h.end_headers()
    h.wfile.flush()
    server.drip(b" " * 10000, every_s=0.5)


def drip_headers(req: Req, server: FakeServer) -> None:
    server.drip(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10000, every_s=0.2)


@pytest.mark.parametrize("app", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_dripping_server_fails_at_the_deadline_and_is_retried(serve, backend, app):
    server = serve(app)
    b = backend(server.url, timeout_s=1.0, max_retries=1)
    message = generate_error(b, reqs(1), within_s=20)  # 2 attempts of 1 s each; a per-read timeout never fires
    assert len(server.chat) == 2 and "deadline" in message and "--timeout-s" in message


def test_a_missed_deadline_is_retried_like_a_timeout(serve, backend):
    server = serve(lambda req, s: drip_body(req, s) if req.index == 1 else echo_seed(req, s))
    out = bounded(lambda: backend(server.url, timeout_s=1.0, max_retries=1).generate(reqs(1)), 20)
    assert out[0][0].text == "seed=100" and len(server.chat) == 2


def test_a_failed_request_stops_the_batch_without_waiting_for_slow_ones(serve, backend):
    def app(req: Req, server: FakeServer) -> Any:
        if "prompt 0" in req.raw.decode():
            return 400, {"error": {"message": "bad request"}}
        server.stop.wait(60)  # answers nothing until the test ends
        return None

    server = serve(app)
    b = backend(server.url, timeout_s=60.0, max_concurrency=4)
    message = generate_error(b, reqs(4), within_s=20)
    assert "HTTP 400" in message


# --- 3. 401 / 403 -----------------------------------------------------------------------------------------------

def test_401_with_no_key_set_says_the_variable_is_not_set(serve, backend, monkeypatch):
    monkeypatch.delenv("SPAR_TEST_KEY", raising=False)
    server = serve(lambda req, s: (401, {"error": {"message": "Missing bearer token"}}))
    message = generate_error(backend(server.url, api_key_env="SPAR_TEST_KEY", max_retries=3), reqs(1))
    assert len(server.chat) == 1  # not retried
    assert "401 Unauthorized" in message and "$SPAR_TEST_KEY is not set" in message and "--api-key-env" in message
    assert "Missing bearer token" in message


def test_401_with_a_key_set_says_it_was_rejected_and_never_shows_it(serve, backend, monkeypatch):
    monkeypatch.setenv("SPAR_TEST_KEY", "sk-very-secret-123")
    server = serve(lambda req, s: (401, {"error": {"message": "Incorrect API key sk-very-secret-123"}}))
    b = backend(server.url, api_key_env="SPAR_TEST_KEY", max_retries=3)
    message = generate_error(b, reqs(1))
    assert server.chat[0].headers["authorization"] == "Bearer sk-very-secret-123"
    assert "401 Unauthorized" in message and "the API key in $SPAR_TEST_KEY was rejected" in message
    assert "sk-very-secret-123" not in message and len(server.chat) == 1
    assert b.describe()["api_key_set"] is True and "sk-very-secret-123" not in repr(b.describe())


def test_403_is_not_retried(serve, backend, monkeypatch):
    monkeypatch.setenv("SPAR_TEST_KEY", "sk-other")
    server = serve(lambda req, s: (403, {"error": {"message": "no access to this model"}}))
    message = generate_error(backend(server.url, api_key_env="SPAR_TEST_KEY", max_retries=3), reqs(1))
    assert len(server.chat) == 1 and "403 Forbidden" in message and "$SPAR_TEST_KEY" in message


def test_a_rejected_key_is_reported_at_start_up(serve, monkeypatch):
    monkeypatch.delenv("SPAR_TEST_KEY", raising=False)
    server = serve(models_status=401)
    with pytest.raises(SparError, match=r"401 Unauthorized: \$SPAR_TEST_KEY is not set"):
        bounded(lambda: OpenAIBackend("m", base_url=server.url, api_key_env="SPAR_TEST_KEY", **FAST))


# --- 4. options refused in the constructor ----------------------------------------------------------------------

@pytest.mark.parametrize("kw, expected", [
    ({"max_concurrency": 0}, "--max-concurrency must be at least 1, got 0"),
    ({"max_concurrency": -3}, "--max-concurrency must be at least 1, got -3"),
    ({"max_retries": -1}, "--max-retries must be at least 0, got -1"),
    ({"timeout_s": 0}, "--timeout-s must be"),
    ({"timeout_s": -5.0}, "--timeout-s must be"),
    ({"timeout_s": math.nan}, "--timeout-s must be"),
    ({"timeout_s": math.inf}, "--timeout-s must be"),
    ({"backoff_s": -1.0}, "backoff_s must be"),
    ({"batch_size": -1}, "--batch-size must be at least 1, got -1"),
    ({"max_concurrency": 2.5}, "--max-concurrency must be a whole number, got 2.5"),
    ({"base_url": "127.0.0.1:8000/v1"}, "not an http:// or https:// URL"),
    ({"base_url": " , "}, "--base-url is empty"),
])
def test_bad_options_are_refused_before_anything_connects(kw, expected):
    kw = {"base_url": f"http://127.0.0.1:{free_port()}/v1", **kw}
    with pytest.raises(SparError) as info:
        OpenAIBackend("m", **kw)
    assert expected in str(info.value)


# --- 5. cache identity ------------------------------------------------------------------------------------------

def test_identity_names_the_server_unless_a_revision_is_pinned(serve, backend):
    a, b = serve(), serve()
    id_a, id_b = backend(a.url).identity, backend(b.url).identity
    assert id_a == f"openai-model:test-model|{a.url}" and id_a != id_b
    assert backend(a.url, model_revision="r1").identity == backend(b.url, model_revision="r1").identity \
        == "openai-model:test-model@r1"
    both = backend(f"{b.url}, {a.url}").identity
    assert both == backend([a.url, b.url]).identity == f"openai-model:test-model|{','.join(sorted([a.url, b.url]))}"
    assert backend(a.url.replace("http://", "http://user:pw-secret@") + "?api_key=k-secret").identity == id_a


def test_another_server_does_not_replay_the_first_servers_answers(serve, backend, tmp_path):
    a = serve(lambda req, s: (200, answer("from A")))
    b = serve(lambda req, s: (200, answer("from B")))
    def run(b: OpenAIBackend) -> Any:
        def go() -> Any:  # the cache is opened on the thread that uses it (sqlite)
            cache = GenerationCache(tmp_path / "c.sqlite")
            try:
                return cached_generate(b, reqs(2), cache)
            finally:
                cache.close()

        return bounded(go)

    out_a, _ = run(backend(a.url))
    out_b, stats_b = run(backend(b.url))
    assert stats_b.generated == 2 and stats_b.cache_hits == 0
    assert {c.text for row in out_a for c in row} == {"from A"} and {c.text for row in out_b for c in row} == {"from B"}
    run(backend(a.url, model_revision="r1"))
    _, stats = run(backend(b.url, model_revision="r1"))
    assert stats.cache_hits == 2  # the same pinned weights on another server replay the cache


# --- 6. credentials in the base URL are used, never shown -------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("http://user:secret@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("https://api.example.com/v1?api_key=sk-abc&x=1#frag", "https://api.example.com/v1"),
    ("HTTP://User:P%40ss@Example.COM:9/v1/", "http://example.com:9/v1"),
    ("user:secret@host/v1?key=sk", "host/v1"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_credentials_in_the_base_url_are_used_but_never_shown(serve, backend):
    secrets = ["alice", "pw-s3cret", "sk-query-secret"]

    def app(req: Req, server: FakeServer) -> Any:  # a server that echoes what it got into its error body
        if req.index == 1:
            return 200, answer("ok")
        return 500, f"upstream failed for {req.path} auth={req.headers.get('authorization')} basic=alice:pw-s3cret"

    server = serve(app)
    creds_url = server.url.replace("http://", "http://alice:pw-s3cret@") + "?api_key=sk-query-secret"
    b = backend(creds_url, max_retries=0)
    assert bounded(lambda: b.generate(reqs(1)))[0][0].text == "ok"
    got = server.chat[0]
    assert got.path.endswith("/chat/completions?api_key=sk-query-secret")
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"alice:pw-s3cret").decode()
    assert server.gets[0].path.endswith("/models?api_key=sk-query-secret")
    described = json.dumps(b.describe())
    assert b.describe()["base_url"] == server.url and b.describe()["base_urls"] == [server.url]
    message = generate_error(b, reqs(1))
    assert "HTTP 500" in message
    for secret in secrets:
        assert secret not in described and secret not in message and secret not in b.identity

    dead = f"http://alice:pw-s3cret@127.0.0.1:{free_port()}/v1?api_key=sk-query-secret"
    with pytest.raises(SparError, match="unreachable") as info:
        OpenAIBackend("m", base_url=dead, **FAST)
    assert not any(secret in str(info.value) for secret in secrets)
    with pytest.raises(SparError) as info:
        OpenAIBackend("m", base_url="ftp://alice:pw-s3cret@host/v1?api_key=sk-query-secret")
    assert not any(secret in str(info.value) for secret in secrets)


# --- 7. several servers -----------------------------------------------------------------------------------------

def test_a_server_answering_500_is_routed_around(serve, backend):
    bad = serve(lambda req, s: (500, "internal error"))
    good = serve()
    b = backend([bad.url, good.url], max_retries=1, max_concurrency=2)
    out = bounded(lambda: b.generate(reqs(6)))
    assert [row[0].text for row in out] == [f"seed={100 + 10 * i}" for i in range(6)]
    assert len(bad.chat) >= 1 and len(good.chat) == 6


def test_a_server_that_goes_down_or_sends_garbage_is_routed_around(serve, backend):
    garbage = serve(lambda req, s: (200, "<html>"))
    doomed, good = serve(), serve()
    b = backend(",".join([garbage.url, doomed.url, good.url]), max_retries=2, max_concurrency=3)
    doomed.close()  # reachable at start-up, gone now: connection refused
    out = bounded(lambda: b.generate(reqs(6)))
    assert [row[0].text for row in out] == [f"seed={100 + 10 * i}" for i in range(6)]
    assert len(garbage.chat) >= 1 and len(good.chat) == 6 and not doomed.chat


def test_load_is_spread_over_healthy_servers(serve, backend):
    def slow(req: Req, server: FakeServer) -> Any:
        server.stop.wait(0.05)
        return echo_seed(req, server)

    a, b = serve(slow), serve(slow)
    backend_ab = backend(f"{a.url},{b.url}", max_concurrency=4)
    assert backend_ab.describe()["base_urls"] == [a.url, b.url]
    out = bounded(lambda: backend_ab.generate(reqs(10, n=2)))
    assert len([c for row in out for c in row]) == 20 and len(a.chat) + len(b.chat) == 20
    assert len(a.chat) >= 5 and len(b.chat) >= 5  # fewest-in-flight with ties in turn: near even


def test_the_least_busy_server_is_picked_ties_in_turn(serve, backend):
    servers = [serve(), serve(), serve()]
    b = backend([s.url for s in servers])
    assert [b._pick(set()) for _ in range(3)] == [0, 1, 2]  # all idle: in turn
    b._release(1)
    assert b._pick(set()) == 1  # the only one with nothing in flight
    b._release(0), b._release(2)
    assert b._pick({0}) == 2  # 0 just failed this request: another one, even though 0 is as idle
    for k in (1, 2):
        b._release(k)


def test_start_up_names_each_unreachable_server(serve):
    live = serve()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(SparError) as info:
        bounded(lambda: OpenAIBackend("m", base_url=[live.url, dead], **FAST))
    message = str(info.value)
    assert "unreachable" in message and dead in message and live.url not in message
    assert len(live.gets) == 1  # every server was checked
