"""A deterministic OpenAI-compatible server on loopback for tests (stdlib only): it answers each chat completion with
the fake backend's `selfplay` script as a function of the messages and the seed, after a small random delay so
that answers come back out of order, and counts requests and the most it had in flight at once."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.core.backends.fake import selfplay_reply
from harness.core.types import ChatRequest, Message


class ScriptedServer:
    """`with ScriptedServer() as server:` serves `server.base_url` until the block ends. `max_delay_s`: each answer
    waits a random time up to this; `status`: answer every chat request with this HTTP status instead."""

    def __init__(self, max_delay_s: float = 0.003, status: int = 200):
        self.max_delay_s, self.status = max_delay_s, status
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None  # a client killed mid-request is not news
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(random.random() * self.max_delay_s)
            if self.status != 200:
                return self.status, {"error": {"message": f"scripted status {self.status}"}}
            request = ChatRequest(tuple(Message(m["role"], m["content"]) for m in body["messages"]),
                                  seed=int(body["seed"]))
            text = selfplay_reply(request, 0)
            return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": sum(len(m["content"]) for m in body["messages"]) // 4,
                                   "completion_tokens": len(text) // 4}}
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write (no Nagle / delayed-ACK stalls)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                self._send(*server.answer(body))

            def log_message(self, *args) -> None:
                pass

        return Handler


def search_roots(n: int) -> list:
    """`n` tree-search roots (instruction, negative, critique) for tests and their child processes."""
    from training.tree_search import Root

    return [Root(f"k{i}", f"Write item {i} in bullet points.", f"bad answer {i}", "Final Judgement: No")
            for i in range(n)]
