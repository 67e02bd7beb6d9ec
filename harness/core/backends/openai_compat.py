"""Any OpenAI-compatible chat server: `vllm serve`, `transformers serve`, hosted APIs; one server or several.

Each sample is its own request with n=1 and seed = request seed + sample index: servers differ in whether they
honour `n` (transformers serve does not), and one request per sample maps one-to-one onto cache entries.

Failures are handled per request:

* `timeout_s` is a deadline for the whole request (connect, send, headers and the whole body). Every socket
  operation is bounded by the time left, and the body is streamed with the deadline checked between chunks, so a
  server that drips one byte a second cannot hold a run. A missed deadline is retried like any timeout.
* Connection errors, missed deadlines, the statuses in `RETRY_STATUS` and 200 answers whose body is not JSON with
  `choices[0].message` are retried, on another server when there is one that has not failed this request yet,
  else after an exponential backoff (`backoff_s`, doubled each time, capped at 30 s, with jitter).
* 401/403 and other statuses are not retried: they become a one-line `SparError` naming the server.
* Once any request fails for good, the other requests of the batch stop (their sockets are shut down) so the error
  reaches the user at once.

Several servers (one per GPU, as the official SPaR code runs vLLM): `base_url` is a list, or one string with URLs
separated by commas. Each request goes to the server with the fewest requests in flight (ties in turn).

Credentials in a base URL (`http://user:secret@host/v1`, `?api_key=...`) are used for the requests but never shown:
`describe()`, `identity` and every error message carry `redact_url(url)`.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import threading
import time
import weakref
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from harness.core.errors import SparError
from harness.core.types import ChatRequest, Completion

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0
MAX_BODY_BYTES = 64 << 20  # a chat completion is kilobytes; more is a broken server, not an answer
SNIPPET_CHARS = 200
REACHABLE_TIMEOUT_S = 30.0


def redact_url(url: str) -> str:
    """`url` without what may be secret: the userinfo (`user:pass@`), the query string and the fragment.

    Scheme and host are lower-cased and a trailing slash dropped, so the result also serves as the server's name in
    cache identities. Text that does not parse as a URL is returned with the same parts cut out.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or not parts.scheme or not parts.netloc:
        head = url.split("?", 1)[0].split("#", 1)[0]
        scheme, sep, rest = head.rpartition("://")
        authority, slash, path = rest.partition("/")
        return (scheme + sep + authority.rpartition("@")[2] + slash + path).rstrip("/")
    host = parts.netloc.rpartition("@")[2].lower()
    return urlunsplit((parts.scheme.lower(), host, parts.path, "", "")).rstrip("/")


class _BadAnswer(Exception):
    """One attempt failed in a way worth retrying; the message says what the server did."""


class _Fatal(Exception):
    """One attempt failed in a way no retry fixes; the message is the user's error."""


class _Aborted(Exception):
    """Another request of the batch failed for good; this one stops."""


# --- the whole-request deadline -------------------------------------------------------------------------------
# httpx gives each socket operation its own timeout, so a server sending a byte now and then never times out. The
# deadline of the attempt running on a thread lives in `_DEADLINE`; a wrapper around httpcore's network backend
# bounds every connect, TLS handshake, read and write by the time left and fails them once it is gone. The wrapper
# also keeps the live sockets so that an aborted batch can shut them down (which wakes a blocked read at once).

_DEADLINE = threading.local()


def _time_left() -> float | None:
    deadline = getattr(_DEADLINE, "at", None)
    return None if deadline is None else deadline - time.monotonic()


@contextmanager
def _deadline(seconds: float) -> Iterator[float]:
    previous = getattr(_DEADLINE, "at", None)
    _DEADLINE.at = time.monotonic() + seconds
    try:
        yield _DEADLINE.at
    finally:
        _DEADLINE.at = previous


def _bounded(timeout: float | None, exc: type[Exception]) -> float | None:
    left = _time_left()
    if left is None:
        return timeout
    if left <= 0:
        raise exc("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


def _deadline_backend(inner: Any, live: "_LiveSockets") -> Any:
    """An httpcore network backend that enforces the thread's deadline on `inner`'s connections."""
    import httpcore

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream: Any) -> None:
            self._stream = stream
            live.add(self)

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            live.discard(self)
            self._stream.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            return Stream(self._stream.start_tls(ssl_context, server_hostname,
                                                 _bounded(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                        socket_options: Any = None) -> Any:
            return Stream(inner.connect_tcp(host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address,
                                            socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
            return Stream(inner.connect_unix_socket(path, _bounded(timeout, httpcore.ConnectTimeout),
                                                    socket_options))

        def sleep(self, seconds: float) -> None:
            inner.sleep(seconds)

    return Backend()


class _LiveSockets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def add(self, stream: Any) -> None:
        with self._lock:
            self._streams.add(stream)

    def discard(self, stream: Any) -> None:
        with self._lock:
            self._streams.discard(stream)

    def shut_down(self) -> None:
        """Wake every blocked read or write on these sockets (they fail; their connections are dropped)."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            try:
                sock = stream.get_extra_info("socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError, AttributeError):
                pass


def _install_deadlines(client: Any, live: _LiveSockets) -> bool:
    """Wrap the network backend of every connection pool of an httpx client (its own and any proxy's)."""
    import httpcore

    installed = False
    for transport in [getattr(client, "_transport", None), *(getattr(client, "_mounts", None) or {}).values()]:
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if isinstance(inner, httpcore.NetworkBackend):
            pool._network_backend = _deadline_backend(inner, live)
            installed = True
    return installed


# --- servers ----------------------------------------------------------------------------------------------------

@dataclass
class _Server:
    url: str          # what is shown: redact_url of the base URL
    raw: str          # what was given
    base: str         # what is requested: the base URL with its userinfo, without query or fragment
    params: list[tuple[str, str]]  # the base URL's query, sent with every request
    client: Any
    in_flight: int = 0


def _split_urls(base_url: str | Sequence[str]) -> list[str]:
    if not isinstance(base_url, (str, list, tuple)):
        raise SparError(f"--base-url must be a URL or a list of URLs, got {type(base_url).__name__}")
    items = [base_url] if isinstance(base_url, str) else list(base_url)
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise SparError(f"--base-url must be a URL or a list of URLs, got {type(item).__name__}")
        for url in item.split(","):
            url = url.strip().rstrip("/")
            if url and url not in urls:
                urls.append(url)
    if not urls:
        raise SparError("--base-url is empty (give the server's URL, e.g. http://127.0.0.1:8000/v1)")
    return urls


def _url_secrets(url: str) -> list[str]:
    """The parts of a base URL that must never be shown, in the forms they may appear in."""
    parts = urlsplit(url)
    found: list[str] = []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    for value in [userinfo, parts.password or "", parts.username or "", parts.query,
                  parts.fragment, *(v for _, v in parse_qsl(parts.query, keep_blank_values=True))]:
        for form in {value, unquote(value)}:
            if len(form) >= 4:
                found.append(form)
    return found


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _snippet(data: bytes | str) -> str:
    """What the server sent, as one quoted line of at most `SNIPPET_CHARS` characters."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = _one_line(text)
    if not text:
        return "an empty body"
    if len(text) > SNIPPET_CHARS:
        return repr(text[:SNIPPET_CHARS]) + f"... ({len(data)} bytes in all)"
    return repr(text)


def _server_message(data: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, else the body itself (shortened)."""
    try:
        payload = json.loads(data)
        message = payload["error"]["message"] if isinstance(payload.get("error"), dict) else payload["error"]
        if isinstance(message, str) and message.strip():
            return _snippet(message)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return _snippet(data)


class OpenAIBackend:
    """Chat completions from one or several OpenAI-compatible servers.

    `base_url`: one URL, a comma-separated string of URLs or a list of them (one server per GPU); requests go to
    the server with the fewest in flight. `max_concurrency` is the total number of requests in flight across all
    servers (raise it with the number of servers). `max_retries`: attempts per request after the first, wherever
    they go. `timeout_s`: deadline per attempt, connect to last byte. `backoff_s`: the first retry's delay (doubled
    each time, capped at 30 s, with jitter); a retry on a server that has not yet failed this request does not
    wait.
    `model_revision`: a label for the served weights; when given, the cache identity is `model@revision` and the
    same pinned model on any server replays the cache; without it the identity includes the server URLs.
    """

    name = "openai"

    def __init__(self, model: str, base_url: str | Sequence[str] = "http://127.0.0.1:8000/v1",
                 api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8, max_retries: int = 5,
                 timeout_s: float = 600.0, model_revision: str | None = None, batch_size: int | None = None,
                 backoff_s: float = 0.5):
        _check_int("--max-concurrency", max_concurrency, 1)
        _check_int("--max-retries", max_retries, 0)
        if batch_size:  # None or 0: the default below
            _check_int("--batch-size", batch_size, 1)
        _check_seconds("--timeout-s", timeout_s, allow_zero=False)
        _check_seconds("backoff_s", backoff_s, allow_zero=True)
        urls = _split_urls(base_url)
        for url in urls:
            _check_url(url)
        import httpx

        self._httpx = httpx
        self.model, self.model_revision = model, model_revision or None
        self.max_concurrency, self.max_retries = int(max_concurrency), int(max_retries)
        self.timeout_s, self.backoff_s = float(timeout_s), float(backoff_s)
        self.batch_size = int(batch_size or self.max_concurrency * 4)  # requests per cache write
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env) if api_key_env else None
        self._key_set = bool(key)
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"  # the key itself is never recorded
        self._live = _LiveSockets()
        self._lock = threading.Lock()
        self._turn = 0
        self._servers: list[_Server] = []
        self._secrets: list[str] = [key] if key and len(key) >= 4 else []
        for url in urls:
            parts = urlsplit(url)
            client = httpx.Client(headers=headers, timeout=self.timeout_s,
                                  limits=httpx.Limits(max_connections=self.max_concurrency,
                                                      max_keepalive_connections=self.max_concurrency))
            _install_deadlines(client, self._live)
            self._servers.append(_Server(url=redact_url(url), raw=url,
                                         base=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                                         params=parse_qsl(parts.query, keep_blank_values=True), client=client))
            self._secrets += _url_secrets(url)
        self._secrets.sort(key=len, reverse=True)
        self.base_urls = [s.url for s in self._servers]
        self.base_url = ",".join(self.base_urls)
        if self.model_revision:
            self.identity = f"openai-model:{model}@{self.model_revision}"
        else:
            self.identity = f"openai-model:{model}|" + ",".join(sorted(self.base_urls))
        try:
            self._check_reachable()
        except BaseException:
            self.close()
            raise

    # --- messages ---------------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """`text` as one line with every credential from the base URLs and the API key cut out."""
        for server in self._servers:  # full URLs first, so they read as their redacted form
            for full in (server.raw, server.base):
                if full != server.url:
                    text = text.replace(full, server.url)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _one_line(text)

    def _error(self, text: str) -> SparError:
        return SparError(self._scrub(text))

    def _auth_message(self, where: str, status: int, data: bytes) -> str:
        reason = "Unauthorized" if status == 401 else "Forbidden"
        var = f"${self.api_key_env}" if self.api_key_env else "the API key variable"
        if not self._key_set:
            hint = (f"{var} is not set; export the server's API key in it "
                    "(or name another variable with --api-key-env)")
        elif status == 401:
            hint = (f"the API key in {var} was rejected (it is set); check it, or name another variable with "
                    "--api-key-env")
        else:
            hint = (f"the API key in {var} (it is set) is not allowed this request; check that it may use "
                    f"model {self.model!r}")
        return f"{where} answered {status} {reason}: {hint}; the server said: {_server_message(data)}"

    # --- start-up ---------------------------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        """GET /models on every server: an unreachable one, or one refusing the API key, is named at start-up."""
        problems: list[str] = []
        for server in self._servers:
            try:
                with _deadline(min(self.timeout_s, REACHABLE_TIMEOUT_S)):
                    status, data = self._exchange(server, "GET", "/models", None)
            except self._transport_errors() as exc:
                problems.append(f"{server.url}: server unreachable ({type(exc).__name__}: {_one_line(str(exc))})")
                continue
            if status in (401, 403):
                raise self._error(self._auth_message(f"{server.url}/models", status, data))
        if problems:
            raise self._error("--base-url " + "; ".join(problems))

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        httpx = self._httpx
        return (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL, OSError, _BadAnswer)

    def _exchange(self, server: _Server, method: str, path: str, body: dict | None) -> tuple[int, bytes]:
        """One HTTP exchange under the thread's deadline: the status and the whole body."""
        httpx = self._httpx
        left = _bounded(None, httpx.TimeoutException) or self.timeout_s
        kw: dict[str, Any] = {"timeout": httpx.Timeout(left), "params": server.params or None}
        if body is not None:
            kw["json"] = body
        with server.client.stream(method, server.base + path, **kw) as resp:
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                _bounded(None, httpx.ReadTimeout)  # the deadline, also where the socket wrapper is absent
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _BadAnswer(f"{server.url}{path} answered {resp.status_code} with more than "
                                     f"{MAX_BODY_BYTES >> 20} MiB")
            return resp.status_code, b"".join(chunks)

    # --- the Backend interface --------------------------------------------------------------------------------

    def render(self, request: ChatRequest) -> str:
        return json.dumps(request.messages_as_dicts(), ensure_ascii=False)

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model, "identity": self.identity, "base_url": self.base_url,
                "base_urls": list(self.base_urls), "model_revision": self.model_revision,
                "api_key_env": self.api_key_env, "api_key_set": self._key_set,
                "max_concurrency": self.max_concurrency, "max_retries": self.max_retries,
                "timeout_s": self.timeout_s, "backoff_s": self.backoff_s}

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        jobs = [(i, j) for i, r in enumerate(requests) for j in range(r.n)]
        results: list[list[Completion | None]] = [[None] * r.n for r in requests]
        if not jobs:
            return results  # type: ignore[return-value]
        abort = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(jobs)), thread_name_prefix="spar-openai")
        ok = False
        try:
            futures = {pool.submit(self._one, requests[i], j, abort): (i, j) for i, j in jobs}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in futures:  # the first failure (in request order) is the one reported
                if fut in done and fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
            for fut, (i, j) in futures.items():
                results[i][j] = fut.result()
            ok = True
        finally:
            if ok:
                pool.shutdown(wait=True)
            else:  # a request failed for good (or Ctrl-C): stop the others now instead of letting them finish
                abort.set()
                pool.shutdown(wait=False, cancel_futures=True)
                self._live.shut_down()
        return results  # type: ignore[return-value]

    def sample(self, request: ChatRequest, index: int, abort: threading.Event | None = None) -> Completion:
        """Sample `index` of `request` on its own (one HTTP request, seed = request seed + index, with the retries
        and fail-over of `generate`): what `generate` makes for it, for callers that keep their own requests in
        flight (`harness.core.concurrent`). Setting `abort` stops it."""
        return self._one(request, index, abort)

    def interrupt(self) -> None:
        """Wake every request blocked on a socket (they fail): a caller stopping the samples it has in flight."""
        self._live.shut_down()

    def close(self) -> None:
        for server in self._servers:
            server.client.close()

    # --- one request ------------------------------------------------------------------------------------------

    def _pick(self, avoid: set[int]) -> int:
        """The server for the next attempt: fewest in flight among those not in `avoid`, ties in turn."""
        with self._lock:
            n = len(self._servers)
            candidates = [k for k in range(n) if k not in avoid] or list(range(n))
            low = min(self._servers[k].in_flight for k in candidates)
            pick = min((k for k in candidates if self._servers[k].in_flight == low), key=lambda k: (k - self._turn) % n)
            self._turn = (pick + 1) % n
            self._servers[pick].in_flight += 1
            return pick

    def _release(self, k: int) -> None:
        with self._lock:
            self._servers[k].in_flight -= 1

    def _one(self, request: ChatRequest, sample: int, abort: threading.Event | None = None) -> Completion:
        abort = abort or threading.Event()
        s = request.sampling
        body = {"model": self.model, "messages": request.messages_as_dicts(), "temperature": s.temperature,
                "top_p": s.top_p, "max_tokens": s.max_new_tokens, "seed": request.seed + sample, "n": 1}
        if s.stop:
            body["stop"] = list(s.stop)
        failed: set[int] = set()  # servers that failed this request since the last backoff
        backoffs = 0
        last = ""
        for attempt in range(self.max_retries + 1):
            if abort.is_set():
                raise _Aborted()
            k = self._pick(failed)
            server = self._servers[k]
            where = f"{server.url}/chat/completions"
            try:
                with _deadline(self.timeout_s):
                    status, data = self._exchange(server, "POST", "/chat/completions", body)
                if status == 200:
                    return _parse(data, where)
                if status in (401, 403):
                    raise _Fatal(self._auth_message(where, status, data))
                if status not in RETRY_STATUS:
                    hint = (f" (is {self.model!r} the name the server knows the model by?)" if status == 404 else "")
                    raise _Fatal(f"{where} answered HTTP {status}: {_server_message(data)}{hint}")
                last = f"{where} answered HTTP {status}: {_server_message(data)}"
            except _Fatal as exc:
                if abort.is_set():
                    raise _Aborted() from None
                raise self._error(str(exc)) from None
            except self._httpx.TimeoutException as exc:
                last = (f"{where}: no complete answer within the {self.timeout_s:g} s deadline (--timeout-s) "
                        f"({type(exc).__name__})")
            except _BadAnswer as exc:
                last = str(exc)
            except self._transport_errors() as exc:
                last = f"{where}: {type(exc).__name__}: {exc}"
            finally:
                self._release(k)
            if attempt == self.max_retries:
                break
            failed.add(k)
            if len(failed) >= len(self._servers):  # no fresh server left: wait, then go round again
                delay = min(MAX_BACKOFF_S, self.backoff_s * 2**backoffs) * (0.5 + random.random())
                backoffs += 1
                failed = {k} if len(self._servers) > 1 else set()
                if abort.wait(delay):
                    raise _Aborted()
        if abort.is_set():
            raise _Aborted()
        tries = self.max_retries + 1
        raise self._error(f"model {self.model!r}: chat request failed after {tries} attempt{'s' * (tries > 1)} "
                          f"(--max-retries {self.max_retries}); last: {last}")


def _parse(data: bytes, where: str) -> Completion:
    """A 200 body as a Completion; `_BadAnswer` (retried) when it is not JSON with `choices[0].message`."""
    try:
        payload = json.loads(data)
    except ValueError:  # includes UnicodeDecodeError
        raise _BadAnswer(f"{where} answered 200 with a body that is not JSON: {_snippet(data)}") from None
    try:
        choice = payload["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError
        content = message.get("content") or ""
    except (KeyError, IndexError, TypeError):
        raise _BadAnswer(f"{where} answered 200 without choices[0].message: {_snippet(data)}") from None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text") or "" if isinstance(p, dict) else str(p) for p in content)
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    return Completion(str(content), str(choice.get("finish_reason") or "stop"), _count(usage.get("prompt_tokens")),
                      _count(usage.get("completion_tokens")))


def _count(value: object) -> int:
    try:
        return max(0, int(value or 0))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _check_int(flag: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, float) and value.is_integer()):
        raise SparError(f"{flag} must be a whole number, got {value!r}")
    if value < least:
        raise SparError(f"{flag} must be at least {least}, got {value}")


def _check_seconds(flag: str, value: object, allow_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SparError(f"{flag} must be a number of seconds, got {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not allow_zero):
        what = "a finite number of seconds, at least 0" if allow_zero else "a finite number of seconds above 0"
        raise SparError(f"{flag} must be {what}, got {value}")


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise SparError(f"--base-url {redact_url(url)!r}: not a valid URL ({_one_line(str(exc))})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SparError(f"--base-url {redact_url(url)!r}: not an http:// or https:// URL with a host "
                        "(e.g. http://127.0.0.1:8000/v1)")
