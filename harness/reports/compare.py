"""`spar compare RUN_A RUN_B`: two runs paired on the same prompts, per metric: A, B, B − A with its paired
bootstrap interval, one paired test that decides the verdict, and the verdict after Holm's correction over all
the metrics compared.

The test of each row depends on the metric's unit of independence (`evaluators.uncertainty.test_choice`): McNemar
where one right/wrong outcome is one independent unit (IFEval prompt-level accuracy, refinement items), Obuchowski's
clustered McNemar where outcomes are clustered within units (IFEval instructions within prompts, LLMBar judgments
within pairs), else the paired bootstrap over the units (means over strata, F1, FollowBench). The rows' p-values are
Holm-adjusted as one family, so the chance that the overall line names any difference between two runs of one
distribution stays at most alpha (tests/test_compare.py simulates it).

Runs are comparable only when they scored the same data (sha256, or hub id and fingerprint) with the same scorer
settings (and, for judged benchmarks, the same judge); otherwise `check_comparable` refuses, naming what differs.
The settings of how the model under test decoded (e.g. a judge benchmark's votes and sampling) may differ: that is
what a comparison is for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from evaluators import evaluator_class, uncertainty
from harness.core.errors import SparError
from harness.reports.runs import Run, find_metric
from harness.core.stats import A_BETTER, B_BETTER, DEFAULT_RESAMPLES, NO_DIFFERENCE, clustered_mcnemar, holm, mcnemar

#: how the rows' p-values are corrected for testing several metrics at once
CORRECTION = "holm"


@dataclass
class Comparison:
    """One metric of one benchmark compared (fractions; difference B - A).

    `low`/`high` is the paired bootstrap interval of the difference over `n` units (`unit`), `p_bootstrap` its
    p-value; `test` names the test that decides the verdict and `p` is its p-value (`outcomes`: the number of
    right/wrong outcomes it used, for McNemar-type tests); `p_holm` is `p` after Holm's correction over all the
    compared metrics, and `verdict` compares `p_holm` with alpha."""

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
    test: str = ""
    p_bootstrap: float | None = None
    p_holm: float | None = None
    outcomes: int | None = None
    outcome_unit: str = ""

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


def _test(bench: str, metric: str, a_samples: list[dict], b_samples: list[dict], intersect: bool,
          bootstrap_p: float) -> tuple[str, float, int | None, str]:
    """(test name, p, outcomes, outcome unit) of the paired test that decides `metric`'s verdict."""
    choice = uncertainty.test_choice(bench, metric)
    try:
        if choice.test == uncertainty.MCNEMAR:
            ya, yb = uncertainty.paired_correct(bench, a_samples, b_samples, metric, intersect)
            mc = mcnemar(ya, yb)
            return f"McNemar ({'exact' if mc.method.startswith('exact') else 'chi-square'})", mc.p, mc.n, \
                choice.outcome
        if choice.test == uncertainty.CLUSTERED:
            ca, cb = uncertainty.paired_clusters(bench, a_samples, b_samples, metric, intersect)
            res = clustered_mcnemar(ca, cb)
            return uncertainty.CLUSTERED, res.p, res.outcomes, choice.outcome
    except SparError:
        pass  # no right/wrong outcomes (e.g. a non-binary per-sample score): the bootstrap decides
    return uncertainty.BOOTSTRAP, bootstrap_p, None, ""


def compare_samples(bench: str, metric: str, a_samples: list[dict], b_samples: list[dict],
                    settings: dict | None = None, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                    alpha: float = 0.05, intersect: bool = False) -> Comparison:
    """One metric of one benchmark compared from two runs' per-sample records, before any correction (the verdict
    compares the test's own p with alpha; `adjust` applies Holm's correction to a family of comparisons)."""
    res = uncertainty.compare(bench, a_samples, b_samples, metric, n_resamples, seed, alpha, intersect=intersect,
                              **(settings or {}))
    test, p, outcomes, outcome_unit = _test(bench, metric, a_samples, b_samples, intersect, res.p)
    unit = uncertainty.records_for(bench).unit
    comp = Comparison(bench, metric, res.a, res.b, res.diff, res.low, res.high, p, res.n, unit, NO_DIFFERENCE,
                      test, res.p, None, outcomes, outcome_unit)
    comp.verdict = _verdict(comp.diff, p, alpha)
    return comp


def _verdict(diff: float, p: float, alpha: float) -> str:
    if not p < alpha or diff == 0 or diff != diff:
        return NO_DIFFERENCE
    return B_BETTER if diff > 0 else A_BETTER


def adjust(results: list[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Holm's correction over the whole family: sets each row's `p_holm` and its verdict (p_holm < alpha)."""
    for comp, adjusted in zip(results, holm([r.p for r in results])):
        comp.p_holm = adjusted
        comp.verdict = _verdict(comp.diff, adjusted, alpha)
    return results


def compare_runs(a: Run, b: Run, metrics: list[str] | None = None, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, alpha: float = 0.05, intersect: bool = False) -> list[Comparison]:
    """Every requested metric of the shared benchmarks compared, after `check_comparable`, with Holm-adjusted
    verdicts over all of them."""
    pairs = resolve_metrics(a, b, metrics)
    for bench in dict.fromkeys(x for x, _ in pairs):
        check_comparable(a, b, bench)
    out = []
    for bench, metric in pairs:
        settings = uncertainty.records_for(bench).settings(a.metrics[bench], a.scorer(bench))
        out.append(compare_samples(bench, metric, a.samples(bench), b.samples(bench), settings, n_resamples, seed,
                                   alpha, intersect))
    return adjust(out, alpha)


def overall_verdict(results: list[Comparison], alpha: float = 0.05) -> str:
    """One line: which run the significant differences favour, after Holm's correction over the metrics."""
    better_a = [r for r in results if r.verdict == A_BETTER]
    better_b = [r for r in results if r.verdict == B_BETTER]
    family = f"Holm-adjusted over {len(results)} metric{'s' if len(results) != 1 else ''}, alpha {alpha:g}"
    if not better_a and not better_b:
        return f"no significant difference on any metric ({family})"
    parts = []
    if better_b:
        parts.append(f"B better on {len(better_b)}")
    if better_a:
        parts.append(f"A better on {len(better_a)}")
    return ", ".join(parts) + f" of {len(results)} metrics ({family})"


def comparison_table(results: list[Comparison], a: Run, b: Run, alpha: float = 0.05):
    """A rich table of the comparison."""
    from rich.table import Table
    from rich.text import Text

    level = round(100 * (1 - alpha))
    table = Table(title=f"A = {a.label}  ({a.path})\nB = {b.label}  ({b.path})",
                  caption=f"percent; B − A with its paired bootstrap {level}% CI over the units; p of the row's "
                          f"test (McNemar where one outcome is one unit, Obuchowski's clustered McNemar for "
                          f"outcomes clustered within units, else the paired bootstrap); verdict: Holm-adjusted p "
                          f"< {alpha:g} over the {len(results)} metrics")
    for col, justify in (("benchmark", "left"), ("metric", "left"), ("A", "right"), ("B", "right"),
                         ("B − A", "right"), (f"{level}% CI", "right"), ("unit", "right"), ("test", "left"),
                         ("p", "right"), ("Holm p", "right"), ("verdict", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in results:
        style = "green" if r.verdict == B_BETTER else "red" if r.verdict == A_BETTER else ""
        unit = (f"{r.outcomes} {r.outcome_unit}s in " if r.outcome_unit and r.outcome_unit != r.unit and
                r.outcomes is not None else "") + f"{r.n} {r.unit}s"
        table.add_row(r.benchmark, r.metric, f"{100 * r.a:.1f}", f"{100 * r.b:.1f}", f"{100 * r.diff:+.1f}",
                      f"[{100 * r.low:+.1f}, {100 * r.high:+.1f}]", unit, r.test, f"{r.p:.3g}",
                      "–" if r.p_holm is None else f"{r.p_holm:.3g}", Text(r.verdict, style=style))
    return table
