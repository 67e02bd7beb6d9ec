"""Compute accounting (issue 15 item 5) and the hf backend's batch sizing (item 6).

Generation stats carry the backends' token counts, split into generated now and read from the cache; every stage
of `spar run` records a `compute` entry; the run summary, `spar tables` (compute table and the score-against-tokens
figure) and `spar view` show them. The batch chooser is a pure function of the device, its free memory and the
model's shape."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.core.backends.hf import AUTO_MAX_BATCH, CPU_BATCH, bytes_per_sequence, choose_batch_size
from harness.core.cache import GenerationCache
from harness.core.compute import compute_columns, generation_totals, iteration_compute, stage_compute
from harness.core.generation import GenerationStats, cached_generate
from harness.core.types import ChatRequest, Completion, SamplingParams
from report_fixtures import spar
from test_methods import FAKE_MODELS, SR, _base, _write
from test_report import build_experiment


# -- generation stats --------------------------------------------------------------------------------------------
class _Counted:
    """A backend that answers with fixed token counts (and one answer without counts, as a server without usage)."""

    identity, batch_size = "counted-v1", 2

    def render(self, request):
        return request.messages[-1].content

    def generate(self, requests):
        return [[Completion(f"{r.messages[-1].content}-{j}", "stop", 10, 0 if "nousage" in r.messages[-1].content
                            else 3) for j in range(r.n)] for r in requests]


def test_tokens_generated_now_and_read_from_the_cache(tmp_path):
    cache = GenerationCache(tmp_path / "gen.sqlite")
    sampling = SamplingParams(max_new_tokens=8)
    requests = [ChatRequest.user(t, sampling=sampling, n=2) for t in ("a", "bb", "nousage")]
    _, first = cached_generate(_Counted(), requests, cache)
    assert (first.requests, first.samples, first.generated, first.cache_hits) == (3, 6, 6, 0)
    assert (first.prompt_tokens, first.completion_tokens) == (60, 12)  # prompt tokens once per sample
    assert (first.cached_prompt_tokens, first.cached_completion_tokens) == (0, 0)
    assert first.uncounted == 2 and first.generate_seconds >= 0
    _, again = cached_generate(_Counted(), requests, cache)
    assert (again.generated, again.cache_hits, again.completion_tokens, again.prompt_tokens) == (0, 6, 0, 0)
    assert (again.cached_prompt_tokens, again.cached_completion_tokens) == (60, 12)  # what they cost when made
    assert again.generate_seconds == 0
    total = GenerationStats()
    total += first
    total += again
    assert total.completion_tokens + total.cached_completion_tokens == 24
    cache.close()


def test_stage_and_iteration_compute():
    gen = [{"requests": 2, "samples": 4, "prompt_tokens": 40, "completion_tokens": 12, "cached_prompt_tokens": 8,
            "cached_completion_tokens": 3, "uncounted": 0, "generate_seconds": 1.25, "cache_hits": 1}]
    assert generation_totals(gen)["total_completion_tokens"] == 15
    assert generation_totals([]) == {}
    collect = stage_compute("generation", 10.0, gen, gpus=2)
    assert collect["gpu_seconds"] == 20.0 and collect["kind"] == "generation" and collect["requests"] == 2
    train = stage_compute("training", 4.0, (), {"per_epoch": 100, "epochs": 3.0}, gpus=0)
    assert train["trained_tokens"] == 300 and train["gpu_seconds"] is None and "requests" not in train
    evals = stage_compute("evaluation", 6.0, gen)
    stages = {"collect": {"compute": collect}, "train_actor": {"compute": train}, "eval_actor": {"compute": evals},
              "old": {"no": "compute"}}
    c = iteration_compute(stages)
    assert c["generation"]["total_completion_tokens"] == 15 and c["training"]["trained_tokens"] == 300
    assert c["all"]["seconds"] == 20.0 and c["all"]["gpu_seconds"] == 20.0
    cols = compute_columns(stages)
    assert cols == {"generated_tokens": 15, "generation_requests": 2, "trained_tokens": 300,
                    "eval_generated_tokens": 15, "seconds": 20.0, "gpu_seconds": 20.0}
    assert compute_columns({"collect": {"seconds": 3}}) == {}  # records from before compute was accounted


def test_gpus_held_by_the_stage_backends(monkeypatch):
    import harness.core.compute as compute
    from harness.core.servers import ServeConfig
    from harness.core.spec import ModelSpec

    hf, cpu = ModelSpec(name="m"), ModelSpec(name="m", device="cpu")
    vllm = ModelSpec(name="m", backend="vllm", tensor_parallel_size=2, data_parallel_size=2)
    remote = ModelSpec(name="m", backend="openai")
    served = ModelSpec(name="m", serve=ServeConfig(command="vllm", replicas=2, gpus="0,1;2,3"))
    monkeypatch.setattr(compute, "visible_gpus", lambda: 0)
    assert compute.local_generation_gpus([hf, vllm, remote]) == 0  # no CUDA here
    assert compute.local_generation_gpus([served]) == 4  # the replicas' GPU groups, as configured
    monkeypatch.setattr(compute, "visible_gpus", lambda: 8)
    assert compute.local_generation_gpus([hf]) == 1 and compute.local_generation_gpus([cpu, remote]) == 0
    assert compute.local_generation_gpus([hf, vllm]) == 4  # one local model at a time: the largest
    assert compute.local_generation_gpus([ModelSpec(name="m", serve=ServeConfig(command="vllm"))]) == 8  # inherit


# -- spar run: every stage records its compute -------------------------------------------------------------------
def test_run_stages_record_compute_and_a_rerun_counts_the_cache(tmp_path):
    from harness.commands import main

    from training.loop import IterationRun

    cfg = _base(tmp_path, "self_rewarding", FAKE_MODELS, self_rewarding=SR, until="data")
    events = []
    IterationRun.stage_observer = staticmethod(lambda event, stage, run: events.append((event, stage, run.t)))
    try:
        assert main(["run", str(_write(tmp_path, cfg))]) == 0
    finally:
        IterationRun.stage_observer = None
    assert events == [(e, s, 1) for s in ("sample", "judge", "data") for e in ("start", "end")]
    stages = json.loads((tmp_path / "exp" / "iter_1" / "record.json").read_text())["stages"]
    for name in ("sample", "judge"):
        c = stages[name]["compute"]
        stats = stages[name]["generation_stats"]
        assert c["kind"] == "generation" and c["requests"] == sum(s["requests"] for s in stats.values()) > 0
        assert c["completion_tokens"] == sum(s["completion_tokens"] for s in stats.values()) > 0
        assert c["cached_completion_tokens"] == 0 and c["gpus"] == 0 and c["gpu_seconds"] is None
        assert c["seconds"] == stages[name]["seconds"]
    first = {n: stages[n]["compute"]["completion_tokens"] for n in ("sample", "judge")}
    # the same run in a new folder over the same cache: nothing generated, the tokens counted as cached
    cfg["output_dir"] = str(tmp_path / "exp2")
    assert main(["run", str(_write(tmp_path, cfg, "again.yaml"))]) == 0
    again = json.loads((tmp_path / "exp2" / "iter_1" / "record.json").read_text())["stages"]
    for name, tokens in first.items():
        c = again[name]["compute"]
        assert c["completion_tokens"] == 0 and c["cached_completion_tokens"] == tokens == c["total_completion_tokens"]


def test_run_records_the_hf_batch_choice(tiny_model_dir, tmp_path):
    from harness.commands import main

    cfg = _base(tmp_path, "spar", {"actor": str(tiny_model_dir), "refiner": str(tiny_model_dir), "backend": "hf",
                                   "device": "cpu", "batch_size": "auto"}, until="collect", prompts_per_iteration=2,
                collect={"responses_per_prompt": 2, "votes": 2, "actor_sampling": {"max_new_tokens": 4},
                         "judge_sampling": {"max_new_tokens": 4}})
    assert main(["run", str(_write(tmp_path, cfg))]) == 0
    collect = json.loads((tmp_path / "exp" / "iter_1" / "record.json").read_text())["stages"]["collect"]["compute"]
    assert collect["batch"] == [{"model": collect["batch"][0]["model"], "size": CPU_BATCH, "source": "auto: cpu"}]
    assert collect["completion_tokens"] > 0 and collect["gpus"] == 0


def test_trained_tokens_from_the_tokenised_dataset():
    from datasets import Dataset

    from training.trainers import trained_tokens

    dpo = Dataset.from_list([{"prompt_ids": [1] * 5, "chosen_ids": [2] * 4, "rejected_ids": [3] * 9}])
    got = trained_tokens(dpo, 12, 2.0)
    assert got["per_epoch"] == 9 + 12 and got["epochs"] == 2.0  # prompt+rejected cut at max_length 12
    sft = Dataset.from_list([{"input_ids": [1] * 7}, {"input_ids": [1] * 30}])
    assert trained_tokens(sft, 20, 1.0)["per_epoch"] == 27
    assert trained_tokens(Dataset.from_list([{"text": "x"}]), 20, 1.0)["per_epoch"] is None


# -- reports: spar tables' compute table and figure, spar view --------------------------------------------------
def _with_compute(exp: Path, tokens: dict[int, int]) -> None:
    for t, n in tokens.items():
        path = exp / f"iter_{t}" / "record.json"
        record = json.loads(path.read_text())
        record["stages"] = {"collect": {"compute": stage_compute("generation", 2.0, [
            {"requests": n // 10, "prompt_tokens": n, "completion_tokens": n, "cached_completion_tokens": 0}])},
            "train_actor": {"compute": stage_compute("training", 1.0, (), {"per_epoch": 50, "epochs": 1.0})}}
        path.write_text(json.dumps(record))


def test_tables_show_compute_and_plot_score_against_tokens(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    work, root = tmp_path / "work", tmp_path / "set"
    work.mkdir()
    spar_exp = build_experiment(root, work, "spar-a", {1: (3, 0.6), 2: (5, 0.7)})
    sr_exp = build_experiment(root, work, "sr-a", {1: (4, 0.6)}, method="self_rewarding")
    _with_compute(spar_exp, {1: 9000, 2: 7000})
    _with_compute(sr_exp, {1: 1500})
    out = tmp_path / "out"
    assert spar("tables", root, "--output", out, "--resamples", "100") == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "Compute per method and iteration" in printed
    rows = (out / "compute.csv").read_text().splitlines()
    assert rows[0].startswith("method,iteration,requests")
    by_key = {(r.split(",")[0], r.split(",")[1]): r.split(",") for r in rows[1:]}
    assert by_key[("spar (spar-a)", "2")][6] == "16000"  # generated through iterations 1..2
    assert by_key[("self_rewarding (sr-a)", "1")][4] == "1500"
    svg = (out / "plots" / "compute.svg").read_text()
    for text in ("completion tokens generated", "spar (spar-a)", "self_rewarding (sr-a)", "IFEval average"):
        assert text in svg, text
    from harness.reports.view import build_html

    html, _ = build_html([root])
    assert 'id="fig-compute"' in html and "generated_tokens" in html and "gpu_seconds" in html


def test_compute_figure_skipped_without_compute_records(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    work, root = tmp_path / "work", tmp_path / "set"
    work.mkdir()
    build_experiment(root, work, "spar-a", {1: (3, 0.6)})
    assert spar("tables", root, "--output", tmp_path / "out", "--resamples", "100") == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "figure skipped: compute: no experiment whose records hold compute entries" in printed
    assert not (tmp_path / "out" / "compute.csv").exists()


# -- batch sizing ------------------------------------------------------------------------------------------------
GiB = 1 << 30


def test_batch_chooser_is_explicit_or_cpu_default_or_from_free_memory():
    assert choose_batch_size(24, "cuda", 100 * GiB, 1000).size == 24  # explicit wins
    assert choose_batch_size(24, "cuda", 100 * GiB, 1000).source == "explicit"
    assert choose_batch_size("auto", "cpu", 100 * GiB, 1000).size == CPU_BATCH  # CPU unchanged
    assert choose_batch_size("auto", "cuda", None, None).size == CPU_BATCH  # unknown memory
    big = choose_batch_size("auto", "cuda:1", 130 * GiB, 100 * (1 << 20))
    assert big.size == AUTO_MAX_BATCH and big.source == "auto: free memory" and big.free_bytes == 130 * GiB
    mid = choose_batch_size("auto", "cuda", 10 * GiB, 100 * (1 << 20))  # 5 GiB usable / 100 MiB = 51 -> 32
    assert mid.size == 32 and mid.to_dict()["bytes_per_sequence"] == 100 * (1 << 20)
    assert choose_batch_size("auto", "cuda", 1 << 20, GiB).size == 1  # nothing fits: one at a time


def test_bytes_per_sequence_from_the_model_shape():
    smollm = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576,
                             intermediate_size=1536, vocab_size=49152)
    per = bytes_per_sequence(smollm, 2, tokens=4096)
    kv = 2 * 30 * 3 * 64 * 2 * 4096
    assert per == kv + 4 * 49152 + 1536 * 4096 * 2
    assert choose_batch_size("auto", "cuda", 139 * GiB, per).size == 256  # one H200: the 256 the issue measured


def test_hf_backend_records_its_batch_choice_on_cpu(tiny_model_dir):
    from harness.core.backends.hf import HFBackend
    from harness.core.models import resolve_model

    auto = HFBackend(resolve_model(str(tiny_model_dir)), device="cpu")
    assert auto.batch_size == CPU_BATCH and auto.describe()["batch"] == {"size": CPU_BATCH, "source": "auto: cpu"}
    fixed = HFBackend(resolve_model(str(tiny_model_dir)), device="cpu", batch_size=3)
    assert fixed.batch_size == 3 and fixed.describe()["batch"]["source"] == "explicit"


def test_batch_size_flag_takes_auto_or_a_positive_number():
    from harness.core.errors import SparError
    from harness.core.spec import ModelSpec

    assert ModelSpec(name="m").batch_size == "auto" and ModelSpec(name="m", batch_size=4).batch_size == 4
    from harness.core.options import validate

    with pytest.raises(SparError, match="config.yaml:3: batch_size: .*a positive integer or auto"):
        validate(ModelSpec, {"name": "m", "batch_size": 0}, "config.yaml", {("batch_size",): 3})
    assert validate(ModelSpec, {"name": "m", "batch_size": "12"}, "x").batch_size == 12
    with pytest.raises(SparError, match="batch_size"):
        validate(ModelSpec, {"name": "m", "batch_size": "big"}, "config.yaml", {("batch_size",): 3})


# -- the GPU check script's overrides are valid config keys --------------------------------------------------------
@pytest.mark.parametrize("tiny,cpu,data", [(False, False, "data"), (True, True, "")])
def test_gpu_check_overrides_load(tmp_path, tiny, cpu, data):
    import importlib.util

    from training.config import load_run_config

    spec = importlib.util.spec_from_file_location("gsc", Path(__file__).parent.parent / "benchmarks" /
                                                  "gpu_serving_check.py")
    gsc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gsc)  # type: ignore[union-attr]
    args = SimpleNamespace(tiny=tiny, cpu=cpu, data=data, replicas=2)
    for path in ("served", "hf", "selfplay"):
        cfg = load_run_config(str(gsc.CPU_CONFIG), gsc.run_overrides(args, path, "smollm2-135m-instruct", tmp_path))
        assert cfg.models.actor.batch_size == "auto" and cfg.eval.batch_size == "auto"
        assert cfg.models.actor.served == (path == "served")
        if path == "served":
            assert cfg.models.refiner.serve.replicas == 2 and "{port}" in cfg.models.refiner.serve.command
