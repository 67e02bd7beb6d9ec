"""Every documented command and config works: each YAML under configs/ loads and validates (models are not loaded),
and every `spar ...` line in README.md's code blocks parses with the CLI's own parser (its configs exist, its eval
and run settings validate). The lists are read when the tests run, so a config or a README line added later is
checked too.

Kinds of configs: `configs/accelerate/*.yaml` are accelerate launcher configs (their process count must be readable),
`configs/eval-*.yaml` are `spar eval --config` files, every other YAML is a `spar run` experiment config.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from harness.commands import build_parser

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _kind(path: Path) -> str:
    rel = path.relative_to(ROOT / "configs")
    if rel.parts[0] == "accelerate":
        return "accelerate"
    return "eval" if rel.name.startswith("eval-") else "run"


def _code_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks of a Markdown text, continuation lines joined."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    return [re.sub(r"\\\n\s*", " ", block) for block in blocks]


def _spar_commands(text: str) -> list[list[str]]:
    """argv of every `spar ...` command in the code blocks (after `&&`, `;`, a YAML `run: |` or env assignments)."""
    commands = []
    for block in _code_blocks(text):
        for line in block.splitlines():
            line = re.sub(r"^\s*-?\s*(run|[a-z]+):\s*\|?\s*", "", line) if re.match(r"^\s*-?\s*run:", line) else line
            for part in re.split(r"&&|;|\|\|", line):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    continue
                while words and _ENV.match(words[0]):
                    words = words[1:]
                if words and words[0] == "spar":
                    commands.append(words[1:])
    return commands


README_COMMANDS = _spar_commands((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_lists_are_not_empty():
    assert len(CONFIGS) >= 5 and {_kind(p) for p in CONFIGS} == {"accelerate", "eval", "run"}
    assert len(README_COMMANDS) >= 20  # the README's tour, methods, tables and CI sections
    assert ["quickstart"] in README_COMMANDS


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_every_config_loads_and_validates(path, monkeypatch):
    """A config that `spar run` / `spar eval --config` would refuse fails here, with the same one-line error."""
    monkeypatch.chdir(ROOT)  # configs name each other relative to the project (accelerate config files)
    rel = str(path.relative_to(ROOT))
    kind = _kind(path)
    if kind == "accelerate":
        from training.launch import launcher_processes

        launched = launcher_processes(f"accelerate launch --config_file {rel}")
        assert launched is not None and launched.processes >= 1
    elif kind == "eval":
        from harness.suite.config import load_eval_config

        cfg = load_eval_config(rel)
        assert cfg.benchmark_names()
    else:
        from training.config import load_run_config

        cfg = load_run_config(rel)
        assert cfg.iterations >= 1 and cfg.experiment


@pytest.mark.parametrize("argv", README_COMMANDS, ids=[" ".join(a)[:80] for a in README_COMMANDS])
def test_every_readme_command_parses(argv, monkeypatch):
    """The CLI's parser accepts each documented command; the configs it names exist and, for eval, score and run,
    its settings validate (nothing runs, no model loads)."""
    monkeypatch.chdir(ROOT)
    args = build_parser().parse_args(argv)
    for word in argv:
        if word.startswith("configs/") and word.endswith(".yaml") and "/X." not in word:
            assert (ROOT / word).is_file(), f"the README names {word}, which does not exist"
    if args.command in ("eval", "score"):
        from harness.commands.flags import config_flag_values
        from harness.suite.config import load_eval_config

        load_eval_config(args.config, config_flag_values(args), args.overrides, args.bench_overrides)
    elif args.command == "run" and (ROOT / args.config).is_file():
        from training.config import load_run_config

        load_run_config(args.config, list(args.overrides))


def _help(argv: list[str], capsys) -> str:
    from harness.commands import main

    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_score_help_lists_only_flags_that_apply(capsys):
    text = _help(["score"], capsys)
    for flag in ("--responses", "--judgments", "--judge", "--judge-votes", "--data", "--output"):
        assert flag + " " in text
    for flag in ("--temperature", "--top-p", "--max-new-tokens", "--system-prompt", "--outputs", "--model "):
        assert flag not in text.replace("--judge-max-new-tokens", "").replace("--judge-temperature", "")


def test_hidden_score_flags_still_work(tmp_path):
    from harness.commands import main

    from evaluators.ifeval import QUICKSTART_FILE

    first = QUICKSTART_FILE.read_text().splitlines()[0]
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"key": json.loads(first)["key"], "response": "r"}) + "\n")
    argv = ["score", "ifeval", "--data", "quickstart", "--outputs", str(responses), "--output", str(tmp_path / "o"),
            "--temperature", "0.5", "--allow-partial", "--skip-invalid"]
    assert main(argv) == 0  # the old alias and a generation flag are accepted (scripts pass them), not listed


def test_eval_help_shows_defaults(capsys):
    text = _help(["eval"], capsys)
    assert "generation budget per response (lm-eval's IFEval setting) (default: 1280)" in text
    assert "--backend" in text and "(default: hf)" in text and "(default: greedy)" in text


def test_compare_help_describes_its_arguments(capsys):
    text = _help(["compare"], capsys)
    assert "RUN_A the reference run" in text and "RUN_B the run compared with it" in text


def test_benchmarks_lists_the_lm_eval_family(capsys):
    from harness.commands import main

    assert main(["benchmarks"]) == 0
    out = capsys.readouterr().out
    assert "lm-eval:<task>" in out and "lm-eval:gsm8k" in out and "num_fewshot" in out


def test_fake_script_module_from_the_current_directory(tmp_path, monkeypatch):
    """`--set model.script=module:function` finds a module in the current directory, as `python -m` would, also
    from the `spar` console script (whose sys.path does not hold the current directory)."""
    import sys

    from harness.commands import main

    (tmp_path / "spar_doc_script_mod.py").write_text("def reply(request, n):\n    return 'scripted answer'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "spar_doc_script_mod", raising=False)
    argv = ["eval", "--model", "m", "--backend", "fake", "--set", "model.script=spar_doc_script_mod:reply",
            "--data", "quickstart", "--limit", "1", "--output", str(tmp_path / "o"), "--cache", str(tmp_path / "c")]
    assert main(argv) == 0
    sample = json.loads((tmp_path / "o" / "ifeval" / "samples.jsonl").read_text().splitlines()[0])
    assert sample["response"] == "scripted answer"
    sys.modules.pop("spar_doc_script_mod", None)
