"""A tiny OpenAI-compatible server on the standard library, used as a managed `serve.command` in tests.

`python tests/stub_openai_server.py --port P [--host H] [--die-at-start] [--never-ready] [--ready-after S]
[--child] [--pid-file F] [--answer-delay S] [--ignore-sigterm]`

Answers are deterministic: the echo backend's text for the last user message, with the request's seed. GET
/v1/models answers 200 once ready. `--child` starts a sleeping child process in the same process group (its pid
is printed), so a test can check that stopping the group ends the children too; like a real server, the stub then
stops its child when it gets SIGTERM itself. `--pid-file` appends
"<pid> <port>" of the server (and of its child) to F.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--model", default="stub")
    ap.add_argument("--die-at-start", action="store_true")
    ap.add_argument("--never-ready", action="store_true")
    ap.add_argument("--ready-after", type=float, default=0.0)
    ap.add_argument("--answer-delay", type=float, default=0.0)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--pid-file", default="")
    ap.add_argument("--ignore-sigterm", action="store_true")
    ap.add_argument("--api-key", default="", help="accepted and ignored (tests check it is never recorded)")
    args = ap.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"stub server pid {os.getpid()} port {args.port} "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    if args.die_at_start:
        print("stub server: failing at start as asked (--die-at-start)", flush=True)
        sys.exit(3)
    pids = [os.getpid()]
    if args.child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pids.append(child.pid)
        print(f"stub server child pid {child.pid}", flush=True)
        if not args.ignore_sigterm:  # as real servers do: SIGTERM stops the workers, then the server
            def stop(signum, frame):
                # no Popen.wait here: the handler may interrupt the main thread inside a lock it would need, and
                # deadlock (seen: the server hung with its child a zombie); a signal and an exit take no lock
                os.kill(child.pid, signal.SIGTERM)
                os._exit(0)

            signal.signal(signal.SIGTERM, stop)
    if args.pid_file:
        with open(args.pid_file, "a") as fh:
            fh.write("".join(f"{pid} {args.port}\n" for pid in pids))
    ready_at = time.monotonic() + args.ready_after

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # one short line per request in the log
            print("stub server: " + fmt % a, flush=True)

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") != "/v1/models":
                return self._send(404, {"error": {"message": "not found"}})
            if args.never_ready or time.monotonic() < ready_at:
                return self._send(503, {"error": {"message": "loading"}})
            self._send(200, {"object": "list", "data": [{"id": args.model, "object": "model"}]})

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": "not found"}})
            req = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            if args.answer_delay:
                time.sleep(args.answer_delay)
            last = [m["content"] for m in req["messages"] if m["role"] == "user"][-1]
            text = f"echo[{req.get('seed')}]: {last}"[: 4 * int(req.get("max_tokens") or 64)]
            self._send(200, {"id": "stub", "object": "chat.completion", "model": req.get("model"),
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}],
                             "usage": {"prompt_tokens": len(last.split()), "completion_tokens": len(text.split())}})

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
