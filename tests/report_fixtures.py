"""Made-up runs for the report tests (tables, compare, regress, plots): run folders written by the real `spar eval`
(fake backend) and `spar score` on built-in or synthetic data, and experiment folders assembled from them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from harness.commands import main

HERE = Path(__file__).resolve().parent
GOOD_IFEVAL = HERE / "data" / "ifeval_quickstart_good.jsonl"
GOOD = {json.loads(line)["key"]: json.loads(line)["response"] for line in GOOD_IFEVAL.read_text().splitlines()}


def _h(*parts) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def _prompt_key(prompt: str) -> int | None:
    from evaluators.ifeval import QUICKSTART_FILE

    for line in QUICKSTART_FILE.read_text().splitlines():
        row = json.loads(line)
        if row["prompt"] == prompt:
            return row["key"]
    return None


def noisy_reply(request, j: int) -> str:
    """A fake sampled actor (`--set model.script=report_fixtures:noisy_reply`): on the quickstart IFEval prompts it
    answers well 60% of the time, depending on the request's seed, else with a bare echo."""
    prompt = request.messages[-1].content
    key = _prompt_key(prompt)
    if key is not None and _h(prompt, request.seed, j, request.sampling.temperature) % 100 < 60:
        return GOOD[key]
    return f"answer {_h(prompt, request.seed, j) % 10007}"


def spar(*args: str) -> int:
    return main([str(a) for a in args])


def write_responses(path: Path, emptied_every: int = 0) -> Path:
    """The good quickstart responses, every `emptied_every`-th one emptied (0: none)."""
    lines = []
    for i, (key, response) in enumerate(GOOD.items()):
        if emptied_every and i % emptied_every == 0:
            response = ""
        lines.append(json.dumps({"key": key, "response": response}))
    path.write_text("\n".join(lines) + "\n")
    return path


def score_ifeval(folder: Path, responses: Path) -> Path:
    assert spar("score", "ifeval", "--responses", responses, "--data", "quickstart", "--output", folder) == 0
    return folder


def llmbar_judgments(path: Path, data_dir: Path, accuracy: float, salt: str = "", pairs: int | None = None) -> Path:
    """Pointwise verdicts on a synthetic LLMBar layout: each right with probability ~`accuracy`."""
    from evaluators.llmbar import SUBSETS

    lines = []
    for subset in SUBSETS:
        rows = json.loads(next(data_dir.rglob(f"{subset}/dataset.json")).read_text())
        for index, row in enumerate(rows[:pairs]):
            for output in (1, 2):
                truth = row["label"] == output
                right = _h(salt, subset, index, output) % 1000 < 1000 * accuracy
                verdict = "Yes" if truth == right else "No"
                lines.append(json.dumps({"subset": subset, "index": index, "output": output, "verdict": verdict}))
    path.write_text("\n".join(lines) + "\n")
    return path


def score_llmbar(folder: Path, judgments: Path, data_dir: Path) -> Path:
    assert spar("score", "llmbar", "--judgments", judgments, "--data", data_dir, "--output", folder) == 0
    return folder


def make_llmbar_dir(root: Path, pairs: int = 12) -> Path:
    """LLMBar's layout with `pairs` pairs per subset."""
    from evaluators.llmbar import SUBSETS, subset_path

    for subset in SUBSETS:
        path = subset_path(root, subset)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"input": f"{subset} instruction {i}", "output_1": f"first {i}", "output_2": f"second {i}",
                 "label": 1 + _h("label", subset, i) % 2} for i in range(pairs)]
        path.write_text(json.dumps(rows))
    return root


def as_eval_run(score_folder: Path, target: Path) -> Path:
    """A `spar score` folder laid out as a `spar eval` run folder (record command eval, files per benchmark), as an
    experiment's iter_<t>/eval/<role>/ holds them."""
    record = json.loads((score_folder / "record.json").read_text())
    bench = record["extra"]["benchmark"]
    target.mkdir(parents=True, exist_ok=True)
    (target / bench).mkdir(exist_ok=True)
    metrics = json.loads((score_folder / "metrics.json").read_text())
    shutil.copy(score_folder / "samples.jsonl", target / bench / "samples.jsonl")
    (target / bench / "metrics.json").write_text(json.dumps(metrics))
    existing = json.loads((target / "metrics.json").read_text()) if (target / "metrics.json").exists() else {}
    existing[bench] = metrics
    (target / "metrics.json").write_text(json.dumps(existing))
    old = json.loads((target / "record.json").read_text()) if (target / "record.json").exists() else None
    benchmarks = (old or {}).get("benchmarks", {})
    benchmarks[bench] = {"data": record["data"], "scorer": record["extra"]["scorer"]}
    new = {"command": "eval", "schema_version": 1, "status": "finished", "config": {"model": {"name": str(target)}},
           "models": {"model": {"identity": f"made-up:{target.name}"}}, "benchmarks": benchmarks, "extra": {}}
    (target / "record.json").write_text(json.dumps(new))
    return target


def add_iteration(exp: Path, t: int, role: str, score_folders: list[Path], experiment: str, method: str = "spar",
                  ablation: str = "") -> Path:
    """iter_<t>/eval/<role>/ of an experiment folder from `spar score` folders, with the iteration record."""
    iter_dir = exp / f"iter_{t}"
    for folder in score_folders:
        as_eval_run(folder, iter_dir / "eval" / role)
    config = {"experiment": experiment, "method": method, "ablation": ablation,
              "models": {"actor": {"name": "smollm2-135m-instruct"}, "refiner": {"name": "smollm2-135m-instruct"}}}
    (exp / "config.json").write_text(json.dumps(config))
    record = {"command": "run", "schema_version": 1, "status": "finished", "experiment": experiment, "iteration": t,
              "config": config, "models": {"actor_in": "a", "actor_out": f"{exp}/iter_{t}/actor"}, "stages": {}}
    (iter_dir / "record.json").write_text(json.dumps(record))
    return iter_dir
