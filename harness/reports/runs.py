"""Run folders and experiment folders as the reports see them.

A *run* is a folder with `record.json` and `metrics.json`: `spar eval` (per benchmark `<run>/<benchmark>/metrics.json`
and `samples.jsonl`, all benchmarks in `<run>/metrics.json`) or `spar score` (one benchmark, named by
`record.extra.benchmark`, files directly in the folder). An *experiment* is a `spar run` folder (`config.json`,
`iter_<t>/record.json`, and the iteration's eval runs in `iter_<t>/eval/actor/` and `iter_<t>/eval/refiner/`).
`collect_runs(paths)` accepts any mix of runs, experiments, single iterations and folders holding those (one level
down), and labels every run from its records: method (the experiment config's `method` / `ablation` when present,
else the experiment name, else "eval"), model, iteration and role.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import SparError
from harness.core.stats import load_samples

ITER_DIR = re.compile(r"^iter_(\d+)$")
#: the sub-folders of an iteration's eval/ folder, and the role each one scores
ROLES = ("actor", "refiner")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SparError(f"{path}: {what} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except OSError as exc:
        raise SparError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def _get(node: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


@dataclass
class Experiment:
    """What the iteration record says about the experiment a run belongs to."""

    path: Path
    name: str
    iteration: int
    config: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)  # the iteration record's stages (their `compute` entries)

    @property
    def compute(self) -> dict:
        """This iteration's compute by kind of stage (harness.core.compute.iteration_compute); zeros in older
        records."""
        from harness.core.compute import iteration_compute

        return iteration_compute(self.stages)

    def generated_tokens_through(self) -> int | None:
        """Completion tokens the method's data stages generated in iterations 1..this one (generated now plus read
        from the cache: what the data cost), from every iter_<k>/record.json of the experiment; None when a record
        holds no compute entries (written before they existed)."""
        from harness.core.compute import iteration_compute

        total = 0
        for k in range(1, self.iteration + 1):
            path = self.path / f"iter_{k}" / "record.json"
            stages = (_read_json(path, "record.json").get("stages") or {}) if path.is_file() else {}
            if not any(isinstance(s, dict) and "compute" in s for s in stages.values()):
                return None
            total += iteration_compute(stages)["generation"]["total_completion_tokens"]
        return total

    @property
    def method(self) -> str:
        """The method label: config `method` (e.g. spar, self_rewarding), with the `ablation` when there is one
        ("spar w/o iterative_training"); the experiment name when the config names no method."""
        method = self.config.get("method")
        ablation = self.ablation
        base = method if isinstance(method, str) and method else self.name
        if ablation:
            return f"{base} w/o {ablation[3:] if ablation.startswith('no_') else ablation}"
        return base

    @property
    def ablation(self) -> str:
        value = self.config.get("ablation")
        return value if isinstance(value, str) else ""

    @property
    def title(self) -> str:
        """The method, and the experiment name when it says more than the method."""
        method = self.method
        return method if self.name in (method, str(self.config.get("method") or "")) else f"{method} ({self.name})"

    def base_model(self, role: str = "actor") -> str:
        """The model a role of the experiment started from (config models.<role>, else models.actor)."""
        models = self.config.get("models") or {}
        spec = models.get(role) or models.get("actor") if isinstance(models, dict) else None
        if isinstance(spec, dict):
            return str(spec.get("name") or "")
        return str(spec or "")


@dataclass
class Run:
    """One run folder: its record, its metrics per benchmark, where its samples are, and its label."""

    path: Path
    record: dict
    metrics: dict[str, dict]
    experiment: Experiment | None = None
    role: str = ""
    _samples: dict[str, list[dict]] = field(default_factory=dict, repr=False)

    # -- identity ----------------------------------------------------------------------------------------------
    @property
    def command(self) -> str:
        """The command that wrote the run (eval, score)."""
        return str(self.record.get("command", ""))

    @property
    def config(self) -> dict:
        """The run's resolved configuration."""
        return self.record.get("config") or {}

    @property
    def benchmarks(self) -> list[str]:
        """The benchmarks the run has metrics for."""
        return list(self.metrics)

    @property
    def iteration(self) -> int | None:
        """The experiment iteration (None outside experiments)."""
        return self.experiment.iteration if self.experiment else None

    @property
    def method(self) -> str:
        """The row's method: the experiment's (see `Experiment.method`), else the run config's `method`, else the
        command ("eval", "score")."""
        if self.experiment:
            return self.experiment.method
        method = self.config.get("method")
        return method if isinstance(method, str) and method else self.command

    @property
    def model(self) -> str:
        """The model under test, by name: for an experiment's runs the model its role started from (the actor or
        refiner of the config; the checkpoints are that model trained), else the run's `model` (spar score: the
        outputs file's name)."""
        if self.experiment and self.experiment.base_model(self.role or "actor"):
            return self.experiment.base_model(self.role or "actor")
        name = _get(self.config, "model", "name") or _get(self.record, "models", "model", "model")
        if name:
            return _short(str(name))
        outputs = _get(self.record, "extra", "outputs")
        return Path(outputs).name if outputs else self.path.name

    @property
    def label(self) -> str:
        """Experiment runs: method · model · iter t · role; other runs: model · method (or command) · decoding."""
        if self.experiment:
            parts = [self.experiment.title, self.model, f"iter {self.iteration}", self.role]
        else:
            decode = self.decode
            parts = [self.model, self.method,
                     f"{decode[0]}@{decode[1]}" if decode and decode[0] != "greedy" else ""]
        return " · ".join(dict.fromkeys(p for p in parts if p))

    @property
    def fake(self) -> bool:
        """Whether a model of the run answered through the fake backend (scripted answers, nothing measured), or
        the run / its experiment was a dry run: the record's models, or the experiment config's `models`."""
        roles = [v for v in (self.record.get("models") or {}).values() if isinstance(v, dict)]
        models = (self.experiment.config.get("models") if self.experiment else None) or {}
        if isinstance(models, dict):
            roles += [models] + [v for v in models.values() if isinstance(v, dict)]
        if any(r.get("backend") == "fake" for r in roles):
            return True
        configs = [self.config, self.record.get("extra") or {}] + ([self.experiment.config] if self.experiment
                                                                    else [])
        return any(isinstance(c, dict) and c.get("dry_run") for c in configs)

    @property
    def decode(self) -> tuple[str, int] | None:
        """(strategy, number of generations per prompt) when the run decoded at a budget: `config.decode`
        (strategy and budget; greedy is 1 generation) or `config.budget`, else the older `config.tree_search`
        (algorithm, budget); None when the record says nothing about it."""
        decode = self.config.get("decode")
        if isinstance(decode, dict) and decode.get("strategy"):
            strategy = str(decode["strategy"])
            return strategy, 1 if strategy == "greedy" else int(decode.get("budget") or 1)
        if isinstance(decode, str) and decode:
            budget = self.config.get("budget")
            return decode, 1 if decode == "greedy" else int(budget or 1)
        search = self.config.get("tree_search")
        if isinstance(search, dict) and search.get("algorithm"):
            return str(search["algorithm"]), int(search.get("budget") or 1)
        if isinstance(search, dict) and "algorithm" in search:
            return "greedy", 1
        return None

    def decode_spent(self, benchmark: str) -> float | None:
        """Generations per prompt the run's decoding actually spent on `benchmark` (its record's
        `benchmarks.<name>.decode.generations_per_prompt`); None when the record does not say (greedy, older runs)."""
        value = _get(self.record, "benchmarks", benchmark, "decode", "generations_per_prompt")
        return float(value) if isinstance(value, (int, float)) else None

    # -- per benchmark -----------------------------------------------------------------------------------------
    def check_benchmark(self, benchmark: str) -> None:
        """A one-line error when the run has no such benchmark."""
        if benchmark not in self.metrics:
            raise SparError(f"{self.path}: no benchmark {benchmark!r} in this run (it has "
                            f"{', '.join(self.benchmarks) or 'none'})")

    def samples_path(self, benchmark: str) -> Path:
        """Where the benchmark's samples.jsonl is (it may be missing)."""
        self.check_benchmark(benchmark)
        if self.command == "score":
            return self.path / "samples.jsonl"
        return self.path / benchmark / "samples.jsonl"

    def has_samples(self, benchmark: str) -> bool:
        """Whether the run kept the benchmark's per-sample records."""
        return benchmark in self.metrics and self.samples_path(benchmark).is_file()

    def samples(self, benchmark: str) -> list[dict]:
        """The per-sample records of `benchmark` (read once); a run without them is an error."""
        if benchmark not in self._samples:
            path = self.samples_path(benchmark)
            if not path.is_file():
                raise SparError(f"{self.path}: run without samples for {benchmark} ({path} is missing); "
                                "confidence intervals and comparisons need the per-sample records")
            rows = load_samples(path)
            if not rows:
                raise SparError(f"{path}: no samples")
            self._samples[benchmark] = rows
        return self._samples[benchmark]

    def entry(self, benchmark: str) -> dict:
        """The record's section on `benchmark` (eval: `benchmarks[<name>]`; score: data, scorer and judge)."""
        self.check_benchmark(benchmark)
        if self.command == "score":
            return {"data": self.record.get("data") or {}, "scorer": _get(self.record, "extra", "scorer") or {},
                    **(_get(self.record, "benchmarks", benchmark) or {})}
        return _get(self.record, "benchmarks", benchmark) or {}

    def data_identity(self, benchmark: str, counts: bool = False) -> dict:
        """What identifies the data scored: checksums (sha256), hub ids and fingerprints, per file for folders of
        files; with `counts`, also the number of items and the limit. Paths are left out (a copy elsewhere is the
        same data); without any checksum, the path is all there is."""
        data = self.entry(benchmark).get("data") or {}
        found = data_identity(data, counts)
        return found or ({"path": data["path"]} if isinstance(data, dict) and data.get("path") else {})

    def scorer(self, benchmark: str) -> dict:
        """The scorer settings the record gives for the benchmark."""
        return self.entry(benchmark).get("scorer") or {}

    def judge_identity(self, benchmark: str) -> str | None:
        """The judge model's identity for a benchmark scored by a judge model, else None."""
        if "judge" not in self.entry(benchmark):
            return None
        return _get(self.record, "models", "judge", "identity") or _get(self.record, "models", "judge", "model")


IDENTITY_KEYS = ("sha256", "hub_id", "fingerprint", "revision")
COUNT_KEYS = ("num_items", "limit")


def data_identity(data: dict | None, counts: bool = False) -> dict:
    """The identifying parts of a record's data entry, nested sections included (not the outputs file of
    `spar score`, not coverage)."""
    if not isinstance(data, dict):
        return {}
    keys = IDENTITY_KEYS + (COUNT_KEYS if counts else ())
    out: dict = {k: data[k] for k in keys if k in data and data[k] is not None}
    for name, value in data.items():
        if isinstance(value, dict) and name not in ("responses", "judgments", "outputs", "coverage"):
            nested = data_identity(value, counts)
            if nested:
                out[name] = nested
    return out


def _short(name: str) -> str:
    """A model name for labels: a hub id or name as given; a checkpoint path by its last two parts."""
    if "/" in name and Path(name).is_absolute():
        parts = Path(name).parts
        return "/".join(parts[-2:])
    return name


# ------------------------------------------------------------------------------------------------- reading
def load_run(path: str | Path, experiment: Experiment | None = None, role: str = "") -> Run:
    """A run folder (see the module docstring); a missing folder, a folder without record.json or metrics.json,
    or a record of another command are one-line errors."""
    path = Path(path)
    if not path.exists():
        raise SparError(f"{path}: no such folder")
    if not path.is_dir():
        raise SparError(f"{path}: not a folder")
    record_path = path / "record.json"
    if not record_path.is_file():
        raise SparError(f"{path}: not a run folder (no record.json)")
    record = _read_json(record_path, "record.json")
    if not isinstance(record, dict):
        raise SparError(f"{record_path}: not a run record")
    command = record.get("command")
    if command not in ("eval", "score", "quickstart"):
        raise SparError(f"{path}: a {command!r} record, not an eval or score run (give an experiment folder for "
                        "spar run)" if command == "run" else f"{path}: not an eval or score run (command "
                        f"{command!r})")
    metrics_path = path / "metrics.json"
    if not metrics_path.is_file():
        raise SparError(f"{path}: run without metrics.json (status {record.get('status', 'unknown')}"
                        + (f": {record['error']}" if record.get("error") else "") + ")")
    metrics = _read_json(metrics_path, "metrics.json")
    if not isinstance(metrics, dict):
        raise SparError(f"{metrics_path}: expected an object")
    if command == "score":
        benchmark = _get(record, "extra", "benchmark")
        if not benchmark:
            raise SparError(f"{record_path}: a score record without extra.benchmark")
        metrics = {benchmark: metrics}
    else:
        metrics = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    return Run(path, record, metrics, experiment, role)


def is_experiment(path: Path) -> bool:
    """Whether `path` is an experiment folder (has iter_<t>/ folders)."""
    return path.is_dir() and any(ITER_DIR.match(p.name) and p.is_dir() for p in path.iterdir())


def iteration_runs(iter_dir: Path, experiment_name: str = "") -> list[Run]:
    """The eval runs of one iteration folder (`eval/actor`, `eval/refiner`), labelled from its record."""
    t = int(ITER_DIR.match(iter_dir.name).group(1))  # type: ignore[union-attr]
    record_path = iter_dir / "record.json"
    record = _read_json(record_path, "record.json") if record_path.is_file() else {}
    config = record.get("config") or {}
    if not config and (iter_dir.parent / "config.json").is_file():
        config = _read_json(iter_dir.parent / "config.json", "config.json")
    name = record.get("experiment") or config.get("experiment") or experiment_name or iter_dir.parent.name
    exp = Experiment(iter_dir.parent, str(name), int(record.get("iteration", t)), config, record.get("models") or {},
                     record.get("stages") or {})
    runs = []
    for role in ROLES:
        folder = iter_dir / "eval" / role
        if (folder / "record.json").is_file() and (folder / "metrics.json").is_file():
            runs.append(load_run(folder, exp, role))
    return runs


def experiment_runs(path: Path) -> list[Run]:
    """Every iteration's eval runs of an experiment folder, in iteration order."""
    iters = sorted((p for p in path.iterdir() if p.is_dir() and ITER_DIR.match(p.name)),
                   key=lambda p: int(ITER_DIR.match(p.name).group(1)))  # type: ignore[union-attr]
    return [run for it in iters for run in iteration_runs(it)]


def collect_runs(paths: list[str | Path]) -> list[Run]:
    """The runs under `paths`: run folders, experiment folders, iteration folders, or folders holding any of
    those one level down. Nothing found under a path is an error naming it."""
    if not paths:
        raise SparError("give at least one run or experiment folder")
    out: list[Run] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise SparError(f"{path}: no such folder")
        if not path.is_dir():
            raise SparError(f"{path}: not a folder (give a run or experiment folder)")
        found = _runs_in(path)
        if found is None:
            children = sorted(p for p in path.iterdir() if p.is_dir())
            found = [run for child in children for run in (_runs_in(child) or [])]
            if not found:
                raise SparError(f"{path}: not a run or experiment folder (no record.json, no iter_<t>/ folders, "
                                "and none in its sub-folders)")
        elif not found:
            raise SparError(f"{path}: no finished evaluations in this experiment (iter_<t>/eval/ is empty)")
        out += found
    seen: set[Path] = set()
    unique = []
    for run in out:
        if run.path.resolve() not in seen:
            seen.add(run.path.resolve())
            unique.append(run)
    return unique


def _runs_in(path: Path) -> list[Run] | None:
    """Runs of `path` itself (None when it is neither a run, an iteration nor an experiment)."""
    if ITER_DIR.match(path.name) and (path / "eval").is_dir():
        return iteration_runs(path)
    if is_experiment(path):
        return experiment_runs(path)
    if (path / "record.json").is_file():
        return [load_run(path)]
    return None


def find_metric(metrics: dict, path: str) -> Any:
    """The value at a dotted path inside one benchmark's metrics (`per_subset.GPTInst.acc`); keys that contain a
    dot or comma themselves (lm-eval's `exact_match,strict-match`) are tried whole first."""
    if path in metrics:
        return metrics[path]
    node: Any = metrics
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
