"""Contamination check (training.contamination, `spar contamination`, the note at the start of `spar run`): planted
copies are found by n-gram and by exact match after normalisation, short texts follow the stated rule, and a run
whose prompts overlap an evaluated benchmark says so and records the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.commands import main
from harness.core.data import read_jsonl
from training.contamination import Text, compare, normalise

QUICKSTART = Path(__file__).resolve().parent.parent / "evaluators" / "data" / "ifeval_quickstart.jsonl"
OWN = "Write a limerick about a cat who learns to code, in exactly five lines, without using the letter z."


def _ifeval_prompts() -> list[dict]:
    return read_jsonl(QUICKSTART)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_normalisation_is_stated_rule():
    assert normalise("Don't  STOP, now!\n(ok)") == ("dont", "stop", "now", "ok")


def test_planted_ifeval_prompt_is_found_by_the_command(tmp_path, capsys):
    planted = _ifeval_prompts()[3]
    prompts = _write(tmp_path / "train.jsonl", [
        {"key": "mine", "prompt": OWN},
        {"key": "copy", "prompt": "Here is a task for you. " + planted["prompt"] + " Thanks a lot!"},
    ])
    out = tmp_path / "out" / "pairs.jsonl"
    assert main(["contamination", "--prompts", str(prompts), "--benchmarks", "ifeval", "--data", "quickstart",
                 "--output", str(out)]) == 0
    pairs = read_jsonl(out)
    assert {(p["training_key"], p["benchmark_key"], p["kind"]) for p in pairs} == {("copy", str(planted["key"]),
                                                                                     "ngram")}
    assert pairs[0]["shared"] == len(normalise(planted["prompt"])) - 13 + 1  # every 13-gram of the prompt
    record = json.loads(out.with_suffix(".record.json").read_text())
    figures = record["extra"]["benchmarks"]["ifeval"]
    assert figures["items"] == len(_ifeval_prompts()) and figures["items_overlapping"] == 1
    assert figures["items_exact"] == 0 and figures["training_overlapping"] == 1
    assert record["extra"]["n"] == 13 and "punctuation" in record["extra"]["normalisation"]
    shown = capsys.readouterr().out
    assert "ifeval" in shown and "1 overlapping pair ->" in shown


def test_exact_match_after_normalisation():
    prompt = _ifeval_prompts()[0]["prompt"]
    variant = "  " + prompt.upper().replace(".", " ").replace(",", "") + "!!"
    bench = [Text.of("b1", prompt), Text.of("b2", OWN + " Also add a title.")]
    found = compare("ifeval", [Text.of("t1", variant), Text.of("t2", "nothing alike at all")], bench)
    assert [(p.training_key, p.benchmark_key, p.kind) for p in found] == [("t1", "b1", "exact")]


def test_short_texts_follow_the_stated_rule():
    short = "write a haiku about the sea at night"  # 8 words < 13: no 13-gram; >= min_words 8: compared whole
    bench = [Text.of("long", "Please write a haiku about the sea at night, and do not use any commas in your reply."),
             Text.of("same", "Write a HAIKU about the sea at night."), Text.of("other", "Write a sonnet about it.")]
    contained = compare("b", [Text.of("t", short)], bench, n=13, short="contained")
    assert {(p.benchmark_key, p.kind) for p in contained} == {("long", "contained"), ("same", "exact")}
    exact_only = compare("b", [Text.of("t", short)], bench, n=13, short="exact")
    assert {(p.benchmark_key, p.kind) for p in exact_only} == {("same", "exact")}
    # a short benchmark prompt found whole inside a long training text
    training = [Text.of("t", "Before answering, " + short + " and then explain it.")]
    assert [(p.benchmark_key, p.kind) for p in compare("b", training, [Text.of("s", short)])] == [("s", "contained")]
    # a word sequence is matched on word boundaries only
    assert compare("b", [Text.of("t", "rewrite a haiku about the sea at nights")], [Text.of("s", short)]) == []
    # under min_words: only an exact match counts (a lone "no" is inside many prompts)
    tiny = [Text.of("no", "No."), Text.of("few", "write a haiku")]
    assert [(p.training_key, p.kind) for p in compare("b", tiny, bench + [Text.of("x", "no")])] == [("no", "exact")]


def test_n_is_configurable():
    bench = [Text.of("b", "one two three four five six seven eight nine ten eleven twelve thirteen")]
    training = [Text.of("t", "zero one two three four five six seven eight nine")]
    assert compare("b", training, bench, n=13) == []
    found = compare("b", training, bench, n=8)
    assert [(p.kind, p.shared) for p in found] == [("ngram", 2)]


def test_responses_are_compared_when_asked(tmp_path):
    planted = _ifeval_prompts()[5]["prompt"]
    rows = [{"prompt": [{"role": "user", "content": OWN}], "chosen": [{"role": "assistant", "content": planted}],
             "rejected": [{"role": "assistant", "content": "no"}]}]
    data = _write(tmp_path / "dpo.jsonl", rows)
    out = tmp_path / "pairs.jsonl"
    args = ["contamination", "--prompts", str(data), "--benchmarks", "ifeval", "--data", "quickstart", "--output",
            str(out)]
    assert main(args) == 0 and read_jsonl(out) == []
    assert main([*args, "--responses"]) == 0
    assert [(p["training_field"], p["kind"]) for p in read_jsonl(out)] == [("response:chosen", "exact")]


@pytest.mark.parametrize("extra, message", [
    (["--benchmarks", ""], "--benchmarks: empty"),
    (["--responses"], "no responses found"),
    (["--n", "0"], "--n"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": OWN}])
    code = main(["contamination", "--prompts", str(prompts), "--data", "quickstart", "--benchmarks", "ifeval",
                 "--output", str(tmp_path / "o.jsonl"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("spar: error:") and message in err and "\n" not in err


def test_prompt_file_without_prompt_names_the_line(tmp_path, capsys):
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": OWN}, {"text": "x"}])
    assert main(["contamination", "--prompts", str(prompts), "--benchmarks", "ifeval", "--data", "quickstart"]) == 2
    assert f"{prompts}:2:" in capsys.readouterr().err


def test_run_notes_overlap_and_records_figures(tmp_path, capsys):
    planted = _ifeval_prompts()[2]
    prompts = _write(tmp_path / "pool.jsonl", [{"key": "own", "prompt": OWN},
                                               {"key": "leak", "prompt": planted["prompt"]}])
    cfg = {"experiment": "ct", "output_dir": str(tmp_path / "exp"), "iterations": 1, "prompts": str(prompts),
           "prompts_per_iteration": 2, "cache": str(tmp_path / "gen.sqlite"), "until": "collect",
           "models": {"actor": "fake-actor", "refiner": "fake-actor", "backend": "fake", "script": "selfplay"},
           "collect": {"responses_per_prompt": 2, "votes": 1},
           "eval": {"actor_benchmarks": "ifeval", "refiner_benchmarks": "", "data": "ifeval=quickstart"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    assert "contamination: the prompt pool overlaps" in err and "ifeval: 1 of" in err and "(1 exact)" in err
    exp = tmp_path / "exp"
    figures = json.loads((exp / "config.json").read_text())["contamination"]
    assert figures["benchmarks"]["ifeval"]["items_exact"] == 1 and figures["n"] == 13
    record = json.loads((exp / "iter_1" / "record.json").read_text())
    assert record["extra"]["contamination"] == figures
    pairs = read_jsonl(exp / "contamination.jsonl")
    assert [(p["training_key"], p["benchmark_key"]) for p in pairs] == [("leak", str(planted["key"]))]
    # switched off: no note, nothing recorded
    cfg.update(output_dir=str(tmp_path / "exp2"), contamination={"check": False})
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    assert "contamination" not in capsys.readouterr().err
    assert json.loads((tmp_path / "exp2" / "config.json").read_text())["contamination"] is None
