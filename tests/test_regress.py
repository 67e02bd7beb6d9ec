"""`spar regress`: a run against a stored baseline; 0 when unchanged, 1 naming the metric when the refiner's
accuracy dropped; `--update` writes the baseline; the committed refiner gate baseline is well formed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from report_fixtures import llmbar_judgments, make_llmbar_dir, score_llmbar, spar

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def llmbar_runs(tmp_path):
    data = make_llmbar_dir(tmp_path / "llmbar", pairs=12)
    good = score_llmbar(tmp_path / "good", llmbar_judgments(tmp_path / "good.jsonl", data, 0.8), data)
    same = score_llmbar(tmp_path / "same", llmbar_judgments(tmp_path / "same.jsonl", data, 0.8), data)
    worse = score_llmbar(tmp_path / "worse", llmbar_judgments(tmp_path / "worse.jsonl", data, 0.45, "w"), data)
    return data, good, same, worse


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("spar: error: ") and "\n" not in err, err
    return err


def test_unchanged_run_passes_and_a_lowered_refiner_accuracy_fails(llmbar_runs, tmp_path, capsys):
    _, good, same, worse = llmbar_runs
    baseline = tmp_path / "baseline.json"
    assert spar("regress", good, "--baseline", baseline, "--update") == 0
    data = json.loads(baseline.read_text())
    assert data["format"] == "spar-regress-baseline/1" and data["tolerance"] == 0.02
    names = set(data["metrics"])
    assert {"llmbar.natural_acc", "llmbar.overall_acc", "llmbar.adversarial_f1", "llmbar.manual_f1"} <= names
    assert all(n.endswith(("_acc", "_f1")) for n in names)
    entry = data["metrics"]["llmbar.overall_acc"]
    assert entry["low"] <= entry["value"] <= entry["high"] and entry["n"] == 60 and entry["unit"] == "pair"
    assert data["source"]["run"] == str(good) and data["source"]["benchmarks"]["llmbar"]["data"]["num_items"] == 60
    capsys.readouterr()
    assert spar("regress", same, "--baseline", baseline) == 0
    assert "no regression" in capsys.readouterr().out
    assert spar("regress", worse, "--baseline", baseline) == 1
    out = capsys.readouterr().out
    assert "regression: " in out and "llmbar.overall_acc" in out and "DROP" in out
    # only the named metrics are checked
    assert spar("regress", worse, "--baseline", baseline, "--metrics", "llmbar.overall_acc") == 1
    out = capsys.readouterr().out
    assert "llmbar.overall_acc" in out and "llmbar.natural_f1" not in out
    # a drop within a loose tolerance still fails when it leaves the baseline's interval
    assert spar("regress", worse, "--baseline", baseline, "--tolerance", "1") == 1
    assert "BELOW CI" in capsys.readouterr().out


def test_drop_below_the_baseline_interval_fails(llmbar_runs, tmp_path, capsys):
    _, good, _, _ = llmbar_runs
    baseline = tmp_path / "baseline.json"
    assert spar("regress", good, "--baseline", baseline, "--update", "--tolerance", "0.5") == 0
    data = json.loads(baseline.read_text())
    entry = data["metrics"]["llmbar.overall_acc"]
    entry["low"] = entry["value"]  # an interval that ends at the value: any drop is below it
    baseline.write_text(json.dumps(data))
    lowered = tmp_path / "lowered"
    shutil.copytree(good, lowered)
    metrics = json.loads((lowered / "metrics.json").read_text())
    metrics["overall_acc"] -= 0.01
    (lowered / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert spar("regress", lowered, "--baseline", baseline) == 1
    assert "BELOW CI" in capsys.readouterr().out


def test_regress_mistakes_are_one_line_errors(llmbar_runs, tmp_path, capsys):
    data, good, _, _ = llmbar_runs
    baseline = tmp_path / "baseline.json"
    assert spar("regress", good, "--baseline", baseline, "--update") == 0
    other = make_llmbar_dir(tmp_path / "other", pairs=6)
    fewer = score_llmbar(tmp_path / "fewer", llmbar_judgments(tmp_path / "f.jsonl", other, 0.8, pairs=6), other)
    capsys.readouterr()
    cases = [((good, "--baseline", tmp_path / "none.json"), "no such baseline file"),
             ((tmp_path / "missing", "--baseline", baseline), "no such folder"),
             ((good, "--baseline", baseline, "--metrics", "llmbar.nope"), "unknown metric 'llmbar.nope'"),
             ((good, "--baseline", baseline, "--tolerance", "x"), "--tolerance: expected a number"),
             ((fewer, "--baseline", baseline), "different data")]
    for args, message in cases:
        assert spar("regress", *args) == 2, args
        assert message in _one_error(capsys)
    ifeval_like = tmp_path / "if.json"
    ifeval_like.write_text("{}")
    assert spar("regress", good, "--baseline", ifeval_like) == 2
    assert "not a spar regress baseline" in _one_error(capsys)


def test_committed_refiner_gate_baseline():
    path = REPO / "results" / "baselines" / "refiner-llmbar-smollm2.json"
    data = json.loads(path.read_text())
    assert data["format"] == "spar-regress-baseline/1"
    assert data["metrics"] and all(k.startswith("llmbar.") for k in data["metrics"])
    assert data["source"]["benchmarks"]["llmbar"]["data"]["limit"] == 2
    for entry in data["metrics"].values():
        assert 0 <= entry["value"] <= 1
    script = REPO / "benchmarks" / "refiner_gate.sh"
    assert script.is_file() and "spar regress" in script.read_text()
