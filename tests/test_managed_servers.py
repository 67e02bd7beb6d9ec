"""Managed inference servers (harness/core/servers.py): started per stage on free ports, health-checked, used through
the openai backend, stopped with their whole process group; failures are one-line errors naming the log.

The managed command is tests/stub_openai_server.py (standard library, deterministic, starts in well under a
second); one slow test runs `transformers serve` on the tiny random model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_spar
from harness.core.errors import SparError
from harness.core.options import validate
from harness.core.servers import ServeConfig, live_groups, port_listening, redact_argv
from harness.core.spec import ModelPool, ModelSpec
from harness.core.types import ChatRequest, SamplingParams

STUB = Path(__file__).with_name("stub_openai_server.py")


def stub(*flags: str) -> str:
    return f"{sys.executable} {STUB} --port {{port}} --model {{model}} " + " ".join(flags)


def spec(model_dir, *flags: str, **serve) -> ModelSpec:
    return ModelSpec(name=str(model_dir), max_retries=2, timeout_s=10,
                     serve=ServeConfig(command=stub(*flags), **serve))


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def recorded_pids(pid_file: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in pid_file.read_text().splitlines()] if pid_file.exists() else []


def requests(k: int = 4) -> list[ChatRequest]:
    return [ChatRequest.user(f"hello {i}", sampling=SamplingParams(max_new_tokens=16), seed=i) for i in range(k)]


def test_replicas_serve_then_stop_with_their_children_and_ports(tiny_model_dir, tmp_path):
    pids = tmp_path / "pids"
    s = spec(tiny_model_dir, "--child", f"--pid-file {pids}", "--api-key sk-hidden-123", replicas=2, gpus="0;1")
    with ModelPool(server_logs=tmp_path / "logs") as pool:
        backend = pool.get(s)
        out = backend.generate(requests())
        assert [c[0].text for c in out] == [f"echo[{i}]: hello {i}" for i in range(4)]
        info = backend.describe()["managed_servers"]
        assert len(info["replicas"]) == 2 and info["seconds_to_ready"] > 0
        assert "sk-hidden-123" not in json.dumps(backend.describe())
        assert "--api-key ***" in info["template"]
        logs = [Path(r["log"]) for r in info["replicas"]]
        assert [log.parent for log in logs] == [tmp_path / "logs"] * 2
        for log, gpus in zip(logs, ("0", "1")):
            assert f"CUDA_VISIBLE_DEVICES={gpus}" in log.read_text()  # each replica its own GPU group
        assert len(recorded_pids(pids)) == 4  # two servers, each with a child
        assert all(alive(pid) for pid, _ in recorded_pids(pids))
        stopped = pool.close_served()
    assert [s["managed_servers"]["name"] for s in stopped] == [info["name"]]
    assert not any(alive(pid) for pid, _ in recorded_pids(pids))
    assert not any(port_listening("127.0.0.1", port) for _, port in recorded_pids(pids))
    assert not live_groups()


def test_a_server_that_dies_at_start_is_a_one_line_error_naming_its_log(tiny_model_dir, tmp_path):
    with ModelPool(server_logs=tmp_path) as pool, pytest.raises(SparError) as err:
        pool.get(spec(tiny_model_dir, "--die-at-start"))
    msg = str(err.value)
    assert "exited with code 3 before it was ready" in msg and str(tmp_path) in msg and "-r0.log" in msg
    assert "--die-at-start" in msg and "\n" not in msg  # the log's last line says why
    assert not live_groups()


def test_a_server_that_never_gets_ready_times_out_and_is_stopped(tiny_model_dir, tmp_path):
    pids = tmp_path / "pids"
    with ModelPool(server_logs=tmp_path) as pool, pytest.raises(SparError) as err:
        pool.get(spec(tiny_model_dir, "--never-ready", f"--pid-file {pids}", startup_timeout_s=1.5))
    assert "did not answer GET" in str(err.value) and "serve.startup_timeout_s" in str(err.value)
    assert "-r0.log" in str(err.value)
    assert recorded_pids(pids) and not any(alive(pid) for pid, _ in recorded_pids(pids))


def test_a_server_ignoring_sigterm_is_killed_with_its_whole_process_group(tiny_model_dir, tmp_path):
    pids = tmp_path / "pids"
    with ModelPool(server_logs=tmp_path) as pool:
        pool.get(spec(tiny_model_dir, "--ignore-sigterm", "--child", f"--pid-file {pids}", stop_timeout_s=0.5))
    (server, port), (child, _) = recorded_pids(pids)  # the child ignores SIGTERM too (inherited)
    assert not alive(server) and not alive(child) and not port_listening("127.0.0.1", port)


def test_a_replica_killed_mid_stage_fails_over_then_the_last_one_is_named(tiny_model_dir, tmp_path):
    with ModelPool(server_logs=tmp_path) as pool:
        backend = pool.get(spec(tiny_model_dir, replicas=2))
        first, second = backend.group.replicas
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        out = backend.generate(requests(6))  # every request lands on the other replica
        assert [c[0].text for c in out] == [f"echo[{i}]: hello {i}" for i in range(6)]
        os.killpg(second.process.pid, signal.SIGKILL)
        second.process.wait()
        with pytest.raises(SparError) as err:
            backend.generate(requests(1))
    msg = str(err.value)
    assert "exited with code -9 during generation" in msg and "-r0.log" in msg and "resume" in msg
    assert not live_groups()


def test_an_exception_in_the_stage_stops_the_servers(tiny_model_dir, tmp_path):
    pids = tmp_path / "pids"
    with pytest.raises(RuntimeError), ModelPool(server_logs=tmp_path) as pool:
        pool.get(spec(tiny_model_dir, f"--pid-file {pids}"))
        raise RuntimeError("a bug in the stage")
    assert recorded_pids(pids) and not any(alive(pid) for pid, _ in recorded_pids(pids))


def test_exclusive_servers_hold_the_pool_alone(tiny_model_dir, tmp_path):
    a, b = spec(tiny_model_dir), spec(tiny_model_dir, "--answer-delay 0")
    shared = spec(tiny_model_dir, "--answer-delay 0.0", exclusive=False)
    with ModelPool(server_logs=tmp_path) as pool:
        first = pool.get(a)
        pool.get(b)  # a second exclusive group stops the first
        assert first.group.stopped and len(live_groups()) == 1
        pool.get(shared)  # a non-exclusive one runs beside
        assert len(live_groups()) == 2
    assert not live_groups()


@pytest.mark.parametrize("serve, message", [
    ({"command": "x --port {port} {gpu}"}, "unknown placeholder {gpu}"),
    ({"command": "x serve {model}"}, "must place {port}"),
    ({"command": "transformers", "replicas": 2, "gpus": "0"}, "1 GPU groups for 2 replicas"),
    ({"command": "x --port {port}", "replicas": 0}, "serve.replicas"),
])
def test_bad_serve_settings_are_refused_when_read(serve, message):
    with pytest.raises(SparError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate(ModelSpec, {"name": "m", "serve": serve}, "cfg.yaml", prefix=("model",))


def test_a_served_role_uses_the_openai_backend_and_fake_cannot_be_served():
    assert ModelSpec(name="m", serve=ServeConfig(command="vllm")).backend == "openai"
    with pytest.raises(SparError, match="cannot be served"):
        ModelSpec(name="m", backend="fake", serve=ServeConfig(command="vllm"))


def test_secrets_in_commands_are_not_recorded():
    assert redact_argv(["s", "--api-key", "k1", "--hf-token=t2", "--port", "1", "--tokenizer", "t",
                        "--max-num-batched-tokens", "8"]) == \
        ["s", "--api-key", "***", "--hf-token=***", "--port", "1", "--tokenizer", "t", "--max-num-batched-tokens", "8"]


def _eval(tiny_model_dir, out: Path, cache: Path, *extra: str, **popen):
    return ["eval", "--model", str(tiny_model_dir), "--set", f"model.serve.command={stub(*extra)}",
            "--set", "model.serve.replicas=2", "--benchmarks", "ifeval", "--limit", "4", "--max-new-tokens", "16",
            "--output", str(out), "--cache", str(cache)]


def test_spar_eval_records_its_servers_and_a_rerun_replays_the_cache(tiny_model_dir, tmp_path, data_dir):
    cache = tmp_path / "c.sqlite"
    first = run_spar(*_eval(tiny_model_dir, tmp_path / "a", cache), env={"SPAR_DATA_DIR": str(data_dir)})
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "a" / "record.json").read_text())
    (group,) = record["servers"]
    assert len(group["replicas"]) == 2 and group["seconds_to_ready"] > 0
    assert all(r["exit_code"] is not None and Path(r["log"]).is_file() for r in group["replicas"])
    assert record["models"]["model"]["backend"] == "openai"
    again = run_spar(*_eval(tiny_model_dir, tmp_path / "b", cache), env={"SPAR_DATA_DIR": str(data_dir)})
    assert again.returncode == 0, again.stderr
    stats = json.loads((tmp_path / "b" / "record.json").read_text())["benchmarks"]["ifeval"]["generation_stats"]
    assert stats["generated"] == 0 and stats["cache_hits"] == 4  # new ports, same weights: the cache replays
    assert not any(port_listening("127.0.0.1", r["port"]) for r in group["replicas"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_ctrl_c_sigterm_or_kill_of_spar_stops_its_servers(tiny_model_dir, tmp_path, data_dir, sig):
    pids = tmp_path / "pids"
    args = _eval(tiny_model_dir, tmp_path / "run", tmp_path / "c.sqlite", "--child", f"--pid-file {pids}",
                 "--answer-delay 30")
    proc = subprocess.Popen([sys.executable, "-m", "harness.commands", *args], cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, SPAR_DATA_DIR=str(data_dir)))
    deadline = time.monotonic() + 120
    while len(recorded_pids(pids)) < 4 or not all(port_listening("127.0.0.1", p) for _, p in recorded_pids(pids)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # requests in flight
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:  # nothing runs in spar: the kernel's parent-death signal stops the servers
        assert proc.returncode == -9
        deadline = time.monotonic() + 30
        # the leader shows as a zombie while its other threads still tear down and hold the socket: wait for both
        while (any(alive(pid) for pid, _ in recorded_pids(pids))
               or any(port_listening("127.0.0.1", port) for _, port in recorded_pids(pids))) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
    else:
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
    assert not any(alive(pid) for pid, _ in recorded_pids(pids))
    assert not any(port_listening("127.0.0.1", port) for _, port in recorded_pids(pids))


@pytest.mark.slow
def test_transformers_serve_as_the_managed_command(tiny_model_dir, tmp_path):
    """The `transformers` preset on the tiny random model, offline (the hub is never asked)."""
    import shutil

    if shutil.which("transformers", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("`transformers` CLI not installed (extra transformers[serving])")
    s = ModelSpec(name=str(tiny_model_dir), serve=ServeConfig(command="transformers", startup_timeout_s=600))
    with ModelPool(server_logs=tmp_path) as pool:
        backend = pool.get(s)
        out = backend.generate(requests(2))
        assert all(isinstance(c[0].text, str) and c[0].completion_tokens <= 16 for c in out)
        ports = [r.port for r in backend.group.replicas]
    assert not any(port_listening("127.0.0.1", p) for p in ports) and not live_groups()


def test_a_role_with_its_own_base_url_does_not_inherit_serve():
    from harness.core.spec import spec_from

    parent = {"name": "m", "serve": {"command": "vllm"}}
    assert "serve" not in spec_from({"name": "gpt-4o", "base_url": "https://api.openai.com/v1"}, parent)
    assert spec_from({"name": "j"}, parent)["serve"] == {"command": "vllm"}  # a local judge is served like its parent


def test_spar_run_starts_and_stops_servers_per_stage(tiny_model_dir, tmp_path, data_dir):
    out = tmp_path / "exp"
    args = ["run", str(REPO / "configs" / "spar-smollm2-cpu.yaml"), "--set", f"models.actor={tiny_model_dir}",
            "--set", f"models.refiner={tiny_model_dir}", "--set", f"models.serve.command={stub()}",
            "--set", "prompts_per_iteration=2", "--set", "until=search", "--set", "eval.iteration0=false",
            "--set", f"output_dir={out}", "--set", f"cache={tmp_path / 'c.sqlite'}"]
    first = run_spar(*args, env={"SPAR_DATA_DIR": str(data_dir)})
    assert first.returncode == 0, first.stderr
    collect = json.loads((out / "iter_1" / "record.json").read_text())["stages"]["collect"]
    (group,) = collect["servers"]  # actor and refiner are one spec here: one group, started once
    (replica,) = group["replicas"]
    assert replica["exit_code"] == -15 and Path(replica["log"]).parent == out / "iter_1" / "servers"
    assert not port_listening("127.0.0.1", replica["port"])  # stopped when the stage ended
    assert collect["generation_stats"]  # it generated through the servers


def test_a_port_taken_before_the_server_binds_it_is_retried_once(tiny_model_dir, tmp_path, monkeypatch):
    import socket

    import harness.core.servers as servers

    real, calls = servers.free_ports, []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        def ports(count, host="127.0.0.1"):  # the first pick is a port someone else holds
            calls.append(count)
            return [taken.getsockname()[1]] if len(calls) == 1 else real(count, host)

        monkeypatch.setattr(servers, "free_ports", ports)
        with ModelPool(server_logs=tmp_path) as pool:
            backend = pool.get(spec(tiny_model_dir))
            assert backend.generate(requests(1))[0][0].text == "echo[0]: hello 0"
    assert len(calls) == 2  # the second start, on a fresh port, served
    (log,) = tmp_path.glob("*.log")  # both starts wrote to the replica's one log
    assert "address already in use" in log.read_text().lower() and log.read_text().count("=== spar") == 2


@pytest.mark.parametrize("ending", ["raise RuntimeError('uncaught')", "pass", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
def test_no_server_outlives_a_python_process_that_never_stopped_it(tmp_path, ending):
    """Library use without the CLI: an uncaught exception or a normal exit (atexit), or SIGTERM with no handler of
    the program's own (the module's handler) still stop the servers."""
    pids = tmp_path / "pids"
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "from pathlib import Path\n"
              "from harness.core.servers import ServerGroup, free_ports, serve_argv\n"
              "ports = free_ports(1)\n"
              f"argv = serve_argv({stub('--child', f'--pid-file {pids}')!r}, {{'port': ports[0], 'model': 'm'}})\n"
              f"ServerGroup('g', [argv], ports, Path({str(tmp_path)!r})).start()\n"
              f"{ending}\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert len(recorded_pids(pids)) == 2, done.stderr
    assert not any(alive(pid) for pid, _ in recorded_pids(pids)), done.stderr
    assert not any(port_listening("127.0.0.1", port) for _, port in recorded_pids(pids))


def test_a_command_that_is_not_installed_is_a_one_line_error(tmp_path):
    from harness.core.servers import ServerGroup

    group = ServerGroup("g", [["spar-no-such-server", "--port", "1"]], [1], tmp_path)
    with pytest.raises(SparError, match="'spar-no-such-server' not found"):
        group.start()
    assert not live_groups()
