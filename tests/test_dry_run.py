"""`spar run CONFIG --dry-run` (training/dry_run.py): every stage runs with fake generation and a tiny random model in
a temporary folder; the experiment's folder and cache are untouched; the output says what was replaced."""

from __future__ import annotations

import pytest
import yaml

from harness.core.types import ChatRequest, Message, SamplingParams
from tests.conftest import REPO
from training.config import load_run_config
from training.dry_run import EVAL_LIMIT, PROMPTS, SCRIPT, dry_config, reply, tiny_tokenizer


def _request(text: str) -> ChatRequest:
    return ChatRequest((Message("user", text),), SamplingParams(temperature=0.7, max_new_tokens=64), seed=3)


def test_dry_config_replaces_generation_model_and_scale(tmp_path):
    cfg = load_run_config(str(REPO / "configs" / "spar-smollm2-cpu.yaml"),
                          ["models.train_launcher=accelerate launch", "rft.num_train_epochs=3"])
    dry = dry_config(cfg, tmp_path, tmp_path / "tiny")
    for role in (dry.models.actor, dry.models.refiner):
        assert (role.backend, role.script, role.name) == ("fake", SCRIPT, str(tmp_path / "tiny"))
    assert dry.models.train_launcher == "" and dry.rft.num_train_epochs == 1
    assert dry.prompts_per_iteration == PROMPTS and dry.eval.limit == EVAL_LIMIT
    assert dry.out == tmp_path / "experiment" and dry.cache == str(tmp_path / "generations.sqlite")
    # what is not replaced stays as configured
    assert dry.method_config == cfg.method_config
    assert (dry.dpo.learning_rate, dry.dpo.global_batch_size, dry.eval.actor_benchmarks) == \
        (cfg.dpo.learning_rate, cfg.dpo.global_batch_size, cfg.eval.actor_benchmarks)


def test_scripted_model_answers_every_method_format():
    from evaluators.judging import judge_prompt, refine_messages
    from evaluators.score_judge import parse_score_strict, score_judge_prompt
    from training.methods.meta_rewarding import META_JUDGE_TEMPLATE

    judged = [reply(_request(judge_prompt("Say hi.", "hi")), j) for j in range(12)]
    assert sum("Final Judgement (if the Output accurately follows the Prompt): Yes" in t for t in judged) > 0
    assert sum("Final Judgement (if the Output accurately follows the Prompt): No" in t for t in judged) > 0
    refine = ChatRequest(refine_messages("Say hi.", "hi", "too short"), SamplingParams(temperature=0.7), seed=1)
    assert any("[[start]]" in reply(refine, j) for j in range(3))
    scores = {parse_score_strict(reply(_request(score_judge_prompt("Say hi.", "hi")), j)) for j in range(12)}
    assert scores <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0} and len(scores) > 1
    meta = reply(_request(META_JUDGE_TEMPLATE), 1)
    assert "Winner: Judgement" in meta
    assert reply(_request("Write a poem."), 0) == reply(_request("Write a poem."), 0)  # deterministic


def test_tiny_tokenizer_encodes_any_text_and_renders_chats():
    tok = tiny_tokenizer()
    text = "Ünïcode ✓ and emoji 🙂, tabs\tand\nnewlines"
    assert tok.decode(tok(text).input_ids) == text
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    rendered = tok.apply_chat_template(chat, tokenize=False)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    prompt = tok.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert rendered.startswith(prompt)


def test_dry_run_runs_every_stage_and_touches_nothing(tmp_path, capsys, monkeypatch):
    import tempfile

    from harness.commands import main

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the dry run's temporary folder goes

    out, cache = tmp_path / "real-exp", tmp_path / "real-cache.sqlite"
    cfg = yaml.safe_load((REPO / "configs" / "spar-smollm2-cpu.yaml").read_text())
    cfg.update(output_dir=str(out), cache=str(cache))
    cfg["eval"].update(actor_benchmarks="ifeval", refiner_benchmarks="", data="ifeval=quickstart", iteration0=False)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--dry-run"]) == 0
    shown = capsys.readouterr()
    lines = shown.out.splitlines()
    stages = "collect, search, data, train_actor, train_refiner, eval_actor, eval_refiner".split(", ")
    iter1 = next(line for line in lines if line.startswith("iter 1: "))
    assert [part.split()[0] for part in iter1[len("iter 1: "):].split(", ")] == stages
    assert any(line.startswith("dry run: every stage ran in") and "valid end to end" in line for line in lines)
    assert not any("not exercised" in line for line in lines)  # both training stages trained
    assert "dry run of spar-smollm2-cpu" in " ".join(shown.err.split())
    assert not out.exists() and not cache.exists()
    assert [p for p in scratch.iterdir() if p.name.startswith("spar-dry-run-")] == []  # removed afterwards


def test_a_bad_config_fails_before_the_dry_run(tmp_path, capsys):
    from harness.commands import main

    path = tmp_path / "c.yaml"
    path.write_text("search:\n  algorithm: astar\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "search.algorithm" in capsys.readouterr().err


CPU_CONFIGS = sorted(p.name for p in (REPO / "configs").glob("*-cpu.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", CPU_CONFIGS)
def test_every_cpu_config_dry_runs(name, data_dir, capsys):
    from harness.commands import main

    assert main(["run", str(REPO / "configs" / name), "--dry-run"]) == 0
    assert "valid end to end" in capsys.readouterr().out
