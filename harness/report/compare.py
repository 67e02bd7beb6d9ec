"""`spar compare RUN_A RUN_B`: two runs paired on the same prompts, per metric: A, B, B − A with its paired
bootstrap interval and p-value, McNemar's test for accuracies over right/wrong outcomes, and a verdict.

Runs are comparable only when they scored the same data (sha256, or hub id and fingerprint) with the same scorer
settings (and, for judged benchmarks, the same judge); otherwise `check_comparable` refuses, naming what differs.
The settings of how the model under test decoded (e.g. a judge benchmark's votes and sampling) may differ: that is
what a comparison is for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from evaluators import evaluator_class, uncertainty
from harness.errors import SparError
from harness.report.runs import Run, find_metric
from harness.stats import DEFAULT_RESAMPLES, mcnemar


@dataclass
class Comparison:
    """One metric of one benchmark compared (fractions; difference B - A)."""

    benchmark: str
    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p: float
    n: int
    unit: str
    verdict: str
    mcnemar_p: float | None = None
    mcnemar_method: str = ""

    def to_dict(self) -> dict:
        """The comparison as JSON-ready fields."""
        return dict(self.__dict__)


def _differences(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in dict.fromkeys(list(a) + list(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix[:-1] or 'value'} ({_short(a)} vs {_short(b)})"]


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 24 else text[:12] + "…" + text[-8:]


def check_comparable(a: Run, b: Run, benchmark: str) -> None:
    """Refuse (SparError) when the runs scored different data, with different scorer settings, or by different
    judges; the message says which."""
    da, db = a.data_identity(benchmark), b.data_identity(benchmark)
    if da != db:
        raise SparError(f"cannot compare {benchmark}: the runs scored different data: "
                        + "; ".join(_differences(da, db)))
    rec = uncertainty.records_for(benchmark)
    sa, sb = rec.scorer_identity(a.scorer(benchmark)), rec.scorer_identity(b.scorer(benchmark))
    if sa != sb:
        raise SparError(f"cannot compare {benchmark}: different scorer settings: "
                        + "; ".join(_differences(sa, sb)[:3]))
    ja, jb = a.judge_identity(benchmark), b.judge_identity(benchmark)
    if ja != jb:
        raise SparError(f"cannot compare {benchmark}: judged by different models ({ja} vs {jb})")


def default_metrics(run: Run, benchmark: str) -> list[str]:
    """A benchmark's headline metrics that its samples support (per-sample means: every numeric metric)."""
    rec = uncertainty.records_for(benchmark)
    try:
        headline = list(evaluator_class(benchmark).headline)
    except SparError:
        headline = []
    known = set(rec.metrics(run.samples(benchmark) if run.has_samples(benchmark) else None))
    values = run.metrics[benchmark]
    chosen = [m for m in headline if m in known and uncertainty.is_number(find_metric(values, m))]
    if chosen:
        return chosen
    return [m for m in rec.metrics(run.samples(benchmark) if run.has_samples(benchmark) else None)
            if uncertainty.is_number(find_metric(values, m))]


def resolve_metrics(a: Run, b: Run, wanted: list[str] | None) -> list[tuple[str, str]]:
    """(benchmark, metric) pairs to compare: `wanted` entries are 'metric' (every shared benchmark that has it)
    or 'benchmark.metric'; default: each shared benchmark's headline metrics."""
    shared = [x for x in a.benchmarks if x in b.benchmarks]
    if not shared:
        raise SparError(f"the runs share no benchmark ({a.path}: {', '.join(a.benchmarks) or 'none'}; "
                        f"{b.path}: {', '.join(b.benchmarks) or 'none'})")
    if not wanted:
        return [(bench, m) for bench in shared for m in default_metrics(a, bench)]
    out = []
    for item in wanted:
        bench, _, metric = item.partition(".")
        if bench in shared and metric:
            pairs = [(bench, metric)]
        else:
            pairs = [(x, item) for x in shared if find_metric(a.metrics[x], item) is not None]
        if not pairs:
            raise SparError(f"unknown metric {item!r} (the shared benchmarks {', '.join(shared)} do not have it; "
                            "use a metrics.json key, or benchmark.key)")
        for bench, metric in pairs:
            if not uncertainty.is_number(find_metric(a.metrics[bench], metric)):
                raise SparError(f"unknown metric {bench}.{metric} (not a number in {a.path}'s metrics)")
        out += pairs
    return list(dict.fromkeys(out))


def compare_runs(a: Run, b: Run, metrics: list[str] | None = None, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, alpha: float = 0.05, intersect: bool = False) -> list[Comparison]:
    """Every requested metric of the shared benchmarks compared, after `check_comparable`."""
    pairs = resolve_metrics(a, b, metrics)
    for bench in dict.fromkeys(x for x, _ in pairs):
        check_comparable(a, b, bench)
    out = []
    for bench, metric in pairs:
        rec = uncertainty.records_for(bench)
        settings = rec.settings(a.metrics[bench], a.scorer(bench))
        res = uncertainty.compare(bench, a.samples(bench), b.samples(bench), metric, n_resamples, seed, alpha,
                                  intersect=intersect, **settings)
        comp = Comparison(bench, metric, res.a, res.b, res.diff, res.low, res.high, res.p, res.n, rec.unit,
                          res.verdict)
        if rec.outcome_metric(metric):
            try:
                ya, yb = uncertainty.paired_correct(bench, a.samples(bench), b.samples(bench), metric, intersect)
                mc = mcnemar(ya, yb)
                comp.mcnemar_p, comp.mcnemar_method = mc.p, mc.method
            except SparError:
                pass
        out.append(comp)
    return out


def overall_verdict(results: list[Comparison]) -> str:
    """One line: which run the significant differences favour."""
    better_a = [r for r in results if r.verdict.startswith("A")]
    better_b = [r for r in results if r.verdict.startswith("B")]
    if not better_a and not better_b:
        return "no significant difference on any metric"
    parts = []
    if better_b:
        parts.append(f"B better on {len(better_b)}")
    if better_a:
        parts.append(f"A better on {len(better_a)}")
    return ", ".join(parts) + f" of {len(results)} metrics"


def comparison_table(results: list[Comparison], a: Run, b: Run, alpha: float = 0.05):
    """A rich table of the comparison."""
    from rich.table import Table
    from rich.text import Text

    level = round(100 * (1 - alpha))
    table = Table(title=f"A = {a.label}  ({a.path})\nB = {b.label}  ({b.path})",
                  caption=f"percent; B − A with its paired bootstrap {level}% CI and two-sided p over the same "
                          "units; McNemar on per-unit right/wrong outcomes")
    for col, justify in (("benchmark", "left"), ("metric", "left"), ("A", "right"), ("B", "right"),
                         ("B − A", "right"), (f"{level}% CI", "right"), ("p", "right"), ("McNemar p", "right"),
                         ("n", "right"), ("verdict", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in results:
        style = "green" if r.verdict.startswith("B") else "red" if r.verdict.startswith("A") else ""
        table.add_row(r.benchmark, r.metric, f"{100 * r.a:.1f}", f"{100 * r.b:.1f}", f"{100 * r.diff:+.1f}",
                      f"[{100 * r.low:+.1f}, {100 * r.high:+.1f}]", f"{r.p:.3g}",
                      "–" if r.mcnemar_p is None else f"{r.mcnemar_p:.3g}", f"{r.n} {r.unit}s",
                      Text(r.verdict, style=style))
    return table
