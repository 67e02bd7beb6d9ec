"""Managed inference servers: a role's OpenAI-compatible servers started for a stage and stopped when it ends.

A role whose spec sets `serve.command` (a command template such as `vllm serve {model} --port {port} ...`, or
the preset `vllm` / `transformers`) is not loaded in this process: spar starts `serve.replicas` copies of the
command on free ports (each with its own `CUDA_VISIBLE_DEVICES` group from `serve.gpus`, its own process group and
its own log file), waits until each answers `GET /v1/models`, and hands their URLs to the `openai` backend, which
spreads the requests over them and moves a failed request to another replica. Closing the backend stops the
replicas: SIGTERM to the whole process group, a wait, SIGKILL, and a check that the port no longer listens.

No server outlives spar: every live group is stopped by the `finally` of the stage that opened it, by an `atexit`
hook, by a SIGTERM handler (installed when the process has none) and, for servers started from the main thread on
Linux, by the kernel when spar itself dies (`PR_SET_PDEATHSIG`: the server gets SIGTERM and stops its own
workers).

A server that exits before it is ready, or does not get ready within `serve.startup_timeout_s`, is a one-line
`SparError` naming its log. The cache identity of a served model is its weights' identity (not the port), so a
rerun after a crash replays what was already generated.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from harness.core.errors import SparError
from harness.core.options import PositiveFloat, PositiveInt, option, options
from harness.core.types import ChatRequest, Completion

#: named command templates (`serve.command: vllm`)
PRESETS = {
    "vllm": "vllm serve {model} --host {host} --port {port} --dtype {dtype} --tensor-parallel-size {tp}",
    "transformers": "transformers serve {model} --host {host} --port {port} --dtype {dtype} --device {device} "
                    "--continuous-batching",
}
#: what a command template may name
PLACEHOLDERS = ("model", "host", "port", "dtype", "tp", "dp", "device", "replica", "revision")
_SECRET_FLAG = re.compile(r"(^|[-_])(key|token|secret|password)$", re.IGNORECASE)  # --api-key, --hf-token
POLL_S = 0.2


@options
class ServeConfig:
    """Managed servers for a role (empty `command`: the role is not served by spar)."""

    command: str = option("", "command template of one replica, or a preset: vllm, transformers; placeholders "
                              "{model} {host} {port} {dtype} {tp} {dp} {device} {replica} {revision}; empty = "
                              "not managed")
    replicas: PositiveInt = option(1, "servers started side by side (one per GPU group); requests are spread "
                                      "over them and a failed one moves to another")
    gpus: str = option("", "CUDA_VISIBLE_DEVICES of each replica, groups separated by ';' (e.g. '0,1;2,3' for "
                           "2 replicas of tensor-parallel 2); empty = inherit")
    startup_timeout_s: PositiveFloat = option(900.0, "seconds a replica may take to answer GET /v1/models")
    stop_timeout_s: PositiveFloat = option(30.0, "seconds between SIGTERM and SIGKILL when stopping")
    host: str = option("127.0.0.1", "address the replicas listen on and are reached at")
    exclusive: bool = option(True, "stop the run's other local models and managed servers before starting (they "
                                   "would share the GPUs); false when each role has GPUs of its own")

    def __post_init__(self) -> None:
        if not self.command:
            return
        template = self.template()
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError as exc:
            raise SparError(f"serve.command: not a valid template ({exc}): {template!r}") from None
        unknown = sorted(n for n in names if n not in PLACEHOLDERS)
        if unknown:
            raise SparError(f"serve.command: unknown placeholder {{{unknown[0]}}} (use "
                            f"{' '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        if "port" not in names:
            raise SparError("serve.command: the template must place {port} (each replica gets its own free port)")
        if self.gpus and len(self.gpu_groups()) != self.replicas:
            raise SparError(f"serve.gpus: {len(self.gpu_groups())} GPU groups for {self.replicas} replicas "
                            f"(serve.replicas); give one group per replica, separated by ';'")

    def template(self) -> str:
        return PRESETS.get(self.command.strip(), self.command)

    def gpu_groups(self) -> list[str]:
        return [g.strip() for g in self.gpus.split(";")] if self.gpus else []


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command as recorded: the value after a flag naming a key, token, secret or password is `***`
    (`--api-key X` and `--api-key=X`)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if flag.startswith("-") and _SECRET_FLAG.search(flag.lstrip("-")):
            if eq:
                out.append(f"{flag}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports the OS reports free on `host` (bound to port 0 and released)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in ports:
            ports.append(port)
    return ports


def port_listening(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


_ERROR_LINE = re.compile(r"(Error|Exception|error:|Killed|died)")


def _this_start(log: Path) -> str:
    """The end of a replica's log written since its last start (the `=== spar` line spar writes first)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text.rpartition("=== spar ")[2]


def _last_line(log: Path) -> str:
    """The log's last error line (or its last line) since the replica started, to put in a one-line error."""
    lines = [ln.strip() for ln in _this_start(log).splitlines()[1:] if ln.strip()]
    if not lines:
        return ""
    errors = [ln for ln in lines if _ERROR_LINE.search(ln) and not ln.startswith(("warnings.warn", "File "))]
    return f" (last {'error ' if errors else ''}line: {(errors or lines)[-1][:200]})"


def _port_taken(log: Path) -> bool:
    """Whether a server's log says (since it started) that its port was already in use."""
    return "address already in use" in _this_start(log).lower()


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel to SIGTERM it when the thread that started it exits (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Replica:
    """One running server."""

    index: int
    port: int
    url: str  # base URL, http://host:port/v1
    argv: list[str]
    gpus: str | None
    log: Path
    process: subprocess.Popen
    ready_s: float | None = None
    exit_code: int | None = None

    def describe(self) -> dict:
        return {"replica": self.index, "url": self.url, "port": self.port, "pid": self.process.pid,
                "command": shlex.join(redact_argv(self.argv)), "cuda_visible_devices": self.gpus,
                "log": str(self.log), "seconds_to_ready": self.ready_s, "exit_code": self.exit_code}


@dataclass
class ServerGroup:
    """The replicas of one served model: `start()` them, use `urls`, `stop()` them (idempotent)."""

    name: str
    argvs: list[list[str]]
    ports: list[int]
    log_dir: Path
    host: str = "127.0.0.1"
    gpus: list[str] = field(default_factory=list)
    startup_timeout_s: float = 900.0
    stop_timeout_s: float = 30.0
    replicas: list[Replica] = field(default_factory=list)
    seconds_to_ready: float | None = None
    stopped: bool = False

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    def start(self) -> None:
        """Launch every replica, then wait until all answer; any failure stops them all and raises."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _register(self)
        t0 = time.monotonic()
        try:
            for i, (argv, port) in enumerate(zip(self.argvs, self.ports)):
                self.replicas.append(self._launch(i, argv, port))
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.seconds_to_ready = round(time.monotonic() - t0, 3)

    def _launch(self, i: int, argv: list[str], port: int) -> Replica:
        log = self.log_dir / f"{self.name}-r{i}.log"
        gpus = self.gpus[i] if self.gpus else None
        env = dict(os.environ)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        exe = shutil.which(argv[0], path=os.pathsep.join([os.path.dirname(sys.executable),
                                                           os.environ.get("PATH", "")]))
        if exe is None:
            raise SparError(f"serve.command: {argv[0]!r} not found (neither on PATH nor beside {sys.executable})")
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"=== spar {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(redact_argv(argv))}"
                     f"{f' (CUDA_VISIBLE_DEVICES={gpus})' if gpus is not None else ''}\n")
            fh.flush()
            main = threading.current_thread() is threading.main_thread() and sys.platform.startswith("linux")
            process = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.DEVNULL, stdout=fh,
                                       stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                       preexec_fn=_die_with_parent if main else None)
        return Replica(i, port, f"http://{self.host}:{port}/v1", list(argv), gpus, log, process)

    def _wait_ready(self, t0: float) -> None:
        pending = list(self.replicas)
        while pending:
            for r in list(pending):
                code = r.process.poll()
                if code is not None:
                    r.exit_code = code
                    raise SparError(f"managed server {self.name} (replica {r.index}, port {r.port}) exited with "
                                    f"code {code} before it was ready; its log: {r.log}{_last_line(r.log)}")
                if _answers(r.url):
                    r.ready_s = round(time.monotonic() - t0, 3)
                    pending.remove(r)
            if pending and time.monotonic() - t0 > self.startup_timeout_s:
                r = pending[0]
                raise SparError(f"managed server {self.name} (replica {r.index}, port {r.port}) did not answer "
                                f"GET {r.url}/models within {self.startup_timeout_s:g} s (serve.startup_timeout_s); "
                                f"its log: {r.log}{_last_line(r.log)}")
            if pending:
                time.sleep(POLL_S)

    def dead(self) -> list[Replica]:
        """Replicas whose process has exited (their exit code recorded)."""
        out = []
        for r in self.replicas:
            code = r.process.poll()
            if code is not None:
                r.exit_code = code
                out.append(r)
        return out

    def stop(self) -> None:
        """SIGTERM each replica's process group, wait up to `stop_timeout_s`, SIGKILL what is left, and wait until
        no replica's port listens any more."""
        if self.stopped:
            return
        for r in self.replicas:
            _signal_group(r.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for r in self.replicas:
            try:
                r.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for r in self.replicas:
            _signal_group(r.process, signal.SIGKILL)  # the leader if still there, and any child left behind
            r.process.wait()
            r.exit_code = r.process.returncode if r.exit_code is None else r.exit_code
        end = time.monotonic() + 10
        while any(port_listening(self.host, r.port) for r in self.replicas) and time.monotonic() < end:
            time.sleep(POLL_S)
        # only now: a stop cut short (a second Ctrl-C) leaves the group registered, and atexit stops it again
        self.stopped = True
        _unregister(self)

    def describe(self) -> dict:
        return {"name": self.name, "replicas": [r.describe() for r in self.replicas],
                "seconds_to_ready": self.seconds_to_ready}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/models", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # start_new_session: the group id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass


# --- no server outlives spar ---------------------------------------------------------------------------------------
_LIVE: list[ServerGroup] = []
_LIVE_LOCK = threading.Lock()
_HOOKS = {"atexit": False, "sigterm": False}


def _register(group: ServerGroup) -> None:
    with _LIVE_LOCK:
        _LIVE.append(group)
        if not _HOOKS["atexit"]:
            atexit.register(stop_all)
            _HOOKS["atexit"] = True
    _install_sigterm()


def _unregister(group: ServerGroup) -> None:
    with _LIVE_LOCK:
        if group in _LIVE:
            _LIVE.remove(group)


def live_groups() -> list[ServerGroup]:
    with _LIVE_LOCK:
        return list(_LIVE)


def stop_all() -> None:
    """Stop every server group this process started and has not stopped yet."""
    for group in reversed(live_groups()):
        group.stop()


def _on_sigterm(signum: int, frame: Any) -> None:
    stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm() -> None:
    """Stop the servers on SIGTERM when nobody else handles it (the spar CLI turns SIGTERM into
    KeyboardInterrupt, whose unwinding stops them)."""
    if _HOOKS["sigterm"] or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    _HOOKS["sigterm"] = True


# --- a served role as a backend ------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("/.~").rsplit("/", 1)[-1]).strip("_")[-40:] or "model"


def serve_argv(template: str, values: dict[str, Any]) -> list[str]:
    """One replica's argv: the template filled (values quoted as single arguments) and split like a shell."""
    quoted = {k: shlex.quote(str(v)) for k, v in values.items()}
    try:
        return shlex.split(template.format(**quoted))
    except (KeyError, IndexError, ValueError) as exc:
        raise SparError(f"serve.command: cannot fill the template {template!r} ({exc})") from None


def _unique_name(base: str, log_dir: Path) -> str:
    taken = {(g.log_dir, g.name) for g in live_groups()}
    name, k = base, 2
    while (log_dir, name) in taken:
        name, k = f"{base}-{k}", k + 1
    return name


class ServedBackend:
    """The `openai` backend over managed replicas of one model; `close()` stops them.

    Its cache identity is the weights' identity (`identity` of the resolved model, with the dtype), not the ports,
    so the same model served again replays the cache."""

    name = "openai"

    def __init__(self, spec: Any, model: Any, log_dir: Path):
        from harness.core.backends import make_backend

        self.spec, self.model_ref = spec, model
        for attempt in range(2):  # a port taken between picking it and the server binding it: once more
            self.group = self._group(log_dir)
            try:
                self.group.start()
                break
            except SparError:
                if attempt or not any(_port_taken(r.log) for r in self.group.dead()):
                    raise
        try:
            self.inner = make_backend("openai", model=model.path, base_url=self.group.urls,
                                      api_key_env=spec.api_key_env, max_concurrency=spec.max_concurrency,
                                      max_retries=spec.max_retries, timeout_s=spec.timeout_s,
                                      model_revision=f"{model.identity}|dtype={spec.dtype}")
        except BaseException:
            self.group.stop()
            raise
        self.identity = self.inner.identity
        self.batch_size = self.inner.batch_size

    def _group(self, log_dir: Path) -> ServerGroup:
        """The replicas to start: the command filled in for each, on free ports."""
        spec, serve = self.spec, self.spec.serve
        ports = free_ports(serve.replicas, serve.host)
        values = {"model": self.model_ref.path, "host": serve.host, "dtype": spec.dtype,
                  "tp": spec.tensor_parallel_size, "dp": spec.data_parallel_size, "device": spec.device,
                  "revision": spec.revision or "main"}
        argvs = [serve_argv(serve.template(), {**values, "port": port, "replica": i}) for i, port in enumerate(ports)]
        return ServerGroup(_unique_name(_slug(spec.name), log_dir), argvs, ports, log_dir, serve.host,
                           serve.gpu_groups(), serve.startup_timeout_s, serve.stop_timeout_s)

    def render(self, request: ChatRequest) -> str:
        return self.inner.render(request)

    def generate(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        with self._naming_dead_replicas():
            return self.inner.generate(requests)

    def sample(self, request: ChatRequest, index: int, abort: threading.Event | None = None) -> Completion:
        """One sample on its own (the openai backend's `sample`, for callers that keep requests in flight)."""
        with self._naming_dead_replicas():
            return self.inner.sample(request, index, abort)

    @contextmanager
    def _naming_dead_replicas(self) -> Iterator[None]:
        """A failure while a replica is dead becomes the error that names the replica's log."""
        dead = self.group.dead()
        if dead and len(dead) == len(self.group.replicas):
            raise self._died(dead)
        try:
            yield
        except SparError:
            dead = self.group.dead()
            if dead:
                raise self._died(dead) from None
            raise

    def __getattr__(self, name: str) -> Any:  # the openai backend's other attributes (max_concurrency, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _died(self, dead: list[Replica]) -> SparError:
        r = dead[0]
        more = f" (and {len(dead) - 1} other replica{'s' * (len(dead) > 2)})" if len(dead) > 1 else ""
        return SparError(f"managed server {self.group.name} (replica {r.index}, port {r.port}) exited with code "
                         f"{r.exit_code} during generation{more}; its log: {r.log}{_last_line(r.log)}; run the same "
                         "command again to resume from the cache")

    def describe(self) -> dict:
        return {**self.inner.describe(), "model": self.model_ref.to_dict(), "served_model_name": self.inner.model,
                "managed_servers": {**self.group.describe(),
                                    "template": " ".join(redact_argv(self.spec.serve.template().split())),
                                    "exclusive": self.spec.serve.exclusive}}

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.group.stop()
