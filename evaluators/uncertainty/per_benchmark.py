"""The per-benchmark resampling rules: each benchmark's `Records` subclass says what one unit is (the thing that was
sampled independently), how units are matched across runs, which strata keep their sizes when resampling, and how
each metric of the benchmark's `metrics.json` is recomputed from a resample of units (equal to the scorer's own
metric on the full sample set; the constants come from the evaluator modules).

Per benchmark (`records_for(name)`):
- `ifeval`: unit = prompt (matched by `key`, else prompt text). Metrics `prompt_level_strict_acc`,
  `inst_level_strict_acc`, `prompt_level_loose_acc`, `inst_level_loose_acc`, `average`. Instruction-level
  accuracy is a ratio over instructions: a resample draws prompts and recomputes (instructions followed) /
  (instructions) over the drawn prompts.
- `followbench`: unit = example group (one example's items at levels 1-5, matched by (category, example_id)),
  resampled within its category (strata), so each category keeps its size; per category and level the SSR/HSR is
  recomputed over the drawn groups' items, the overall level score is the mean over categories, the average the
  mean over levels, as the scorer does. Metrics `ssr_lv1`..`ssr_lv5`, `ssr_avg`, `hsr_lv1`..`hsr_lv5`, `hsr_avg`,
  `csl`. Invalid judge outputs follow the scorer's `invalid_policy` ("zero": they count as unsatisfied, for CSL
  too; "exclude": they leave the HSR/SSR denominators and their example group leaves CSL); a category-level
  without any valid judgment (for CSL: a category) has no score and leaves the mean, as in the scorer.
- `llmbar`: unit = pair (matched by (subset, index)), resampled within its subset (strata); per-subset accuracy /
  F1 are recomputed over the drawn pairs' two judgments and the adversarial / overall means over subsets
  recomputed per resample. Metrics `natural_acc`, `adversarial_acc`, `overall_acc`, `<subset>_acc` (`neighbor_acc`,
  `gptinst_acc`, ...), the same with `_f1` (pointwise protocol) or `_agreement` (pairwise), `per_subset.<Subset>.acc`
  / `.f1`, `positional_agreement` (pairwise).
- `refinement`: unit = item (matched by prompt). Metric `accuracy`.
- any other benchmark (e.g. `lm-eval:<task>`): unit = sample row (matched by `doc_id`, `key`, `index`, `id` or
  `prompt`); a metric is the mean of the rows' numeric field of that name; `name,filter` (lm-eval's metric keys,
  e.g. `exact_match,strict-match`) takes the field `name` of the rows whose `filter` is `filter`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evaluators.followbench import INVALID_POLICIES, LEVELS
from evaluators.ifeval import METRICS as PROMPT_METRICS
from evaluators.llmbar import ADVERSARIAL, SUBSETS
from evaluators.uncertainty.records import Records, require_fields
from harness.core.errors import SparError
from harness.core.stats import nan_rows, nanmean_rows, ratio


# ------------------------------------------------------------------------------------------------- IFEval: prompts
class PromptRecords(Records):
    """IFEval: one unit per prompt."""

    name = "ifeval"
    unit = "prompt"
    FIELDS = ("follow_all_instructions_strict", "follow_all_instructions_loose", "follow_instruction_list_strict",
              "follow_instruction_list_loose")

    def metrics(self, samples=None):
        return tuple(PROMPT_METRICS) + ("average",)

    def unit_key(self, unit):
        return unit["key"] if unit.get("key") is not None else unit["prompt"]

    def prepare(self, metric, units, **settings):
        for u in units:
            require_fields(u, self.FIELDS, self.name)
        arrays = {
            "prompt_level_strict_acc": np.array([bool(u["follow_all_instructions_strict"]) for u in units], float),
            "prompt_level_loose_acc": np.array([bool(u["follow_all_instructions_loose"]) for u in units], float),
            "inst_level_strict_acc": np.array([sum(map(bool, u["follow_instruction_list_strict"])) for u in units],
                                              float),
            "inst_level_loose_acc": np.array([sum(map(bool, u["follow_instruction_list_loose"])) for u in units],
                                             float)}
        counts = np.array([len(u["follow_instruction_list_strict"]) for u in units], float)

        def one(name: str, idx: np.ndarray) -> np.ndarray:
            if name.startswith("prompt_level"):
                return arrays[name][idx].sum(axis=1) / idx.shape[1]
            return ratio(arrays[name][idx].sum(axis=1), counts[idx].sum(axis=1))

        if metric == "average":
            def average(idx):
                total = one(PROMPT_METRICS[0], idx)
                for name in PROMPT_METRICS[1:]:
                    total = total + one(name, idx)
                return total / len(PROMPT_METRICS)
            return average
        return lambda idx: one(metric, idx)

    def outcome_unit(self, metric):
        return "prompt" if metric.startswith("prompt_level_") else \
            "instruction" if metric.startswith("inst_level_") else ""

    def outcomes(self, units, metric=""):
        """`prompt_level_*`: one outcome per prompt; `inst_level_*`: one per instruction (clustered within
        prompts: `test_choice` gives Obuchowski's clustered McNemar, not McNemar, for them)."""
        metric = metric or "prompt_level_strict_acc"
        mode = "strict" if "strict" in metric else "loose"
        if metric.startswith("prompt_level"):
            return [bool(s[f"follow_all_instructions_{mode}"]) for s in units]
        if metric.startswith("inst_level"):
            return [bool(v) for s in units for v in s[f"follow_instruction_list_{mode}"]]
        raise SparError(f"no per-unit outcome for {metric!r} (choose a prompt_level_* or inst_level_* metric)")


# ------------------------------------------------------------------------------------------ FollowBench: groups
class GroupRecords(Records):
    """FollowBench: one unit per example group (the example's items at levels 1-5), strata = categories."""

    name = "followbench"
    unit = "example group"
    FIELDS = ("category", "example_id", "level", "hard", "soft")

    def metrics(self, samples=None):
        return tuple(f"{m}_lv{k}" for m in ("ssr", "hsr") for k in LEVELS) + ("ssr_avg", "hsr_avg", "csl")

    def units(self, samples):
        groups: dict[tuple, list[dict]] = {}
        for s in samples:
            require_fields(s, self.FIELDS, self.name)
            groups.setdefault((s["category"], s["example_id"]), []).append(s)
        return [tuple(g) for g in groups.values()]

    def unit_key(self, unit):
        return unit[0]["category"], unit[0]["example_id"]

    def strata(self, units):
        return [u[0]["category"] for u in units]

    def settings(self, metrics=None, scorer=None):
        policy = (metrics or {}).get("invalid_policy") or (scorer or {}).get("invalid_policy") or "zero"
        return {"invalid_policy": policy}

    def statistic(self, metric, invalid_policy: str = "zero", **settings):
        if invalid_policy not in INVALID_POLICIES:
            raise SparError(f"invalid_policy must be one of {', '.join(INVALID_POLICIES)}, got {invalid_policy!r}")
        return super().statistic(metric, invalid_policy=invalid_policy)

    def prepare(self, metric, units, invalid_policy="zero", **settings):
        for u in units:
            for s in u:
                require_fields(s, self.FIELDS, self.name)
        categories = list(dict.fromkeys(u[0]["category"] for u in units))
        cat = np.array([categories.index(u[0]["category"]) for u in units])
        nl = len(LEVELS)
        exclude = invalid_policy == "exclude"
        shape = (len(units), nl)
        soft, hard = np.zeros(shape), np.zeros(shape)
        counted = np.zeros(shape)  # items in the denominators (all under "zero", the valid ones under "exclude")
        valid_items = np.zeros(shape)  # a category-level without a valid item has no score (n/a), as in the scorer
        csl = np.zeros(len(units))
        csl_eligible = np.zeros(len(units))  # complete groups (and, under "exclude", with every judgment valid)
        csl_valid_levels = np.zeros(len(units))  # "zero": a category whose eligible groups have no valid level is n/a
        for g, group in enumerate(units):
            by_level: dict[int, tuple[int, bool]] = {}
            for s in group:
                valid = s.get("judgment_valid", True) is not False
                level = s["level"]
                by_level[level] = (s["hard"] if valid else 0, valid)
                if level not in LEVELS:
                    continue
                k = LEVELS.index(level)
                valid_items[g, k] += valid
                if exclude and not valid:
                    continue
                soft[g, k] += s["soft"]
                hard[g, k] += s["hard"]
                counted[g, k] += 1
            if set(by_level) == set(LEVELS) and (not exclude or all(v for _, v in by_level.values())):
                csl_eligible[g] = 1
                csl[g] = next((k - 1 for k in LEVELS if by_level[k][0] != 1), len(LEVELS))
                csl_valid_levels[g] = sum(v for _, v in by_level.values())

        def category_sums(values: np.ndarray, idx: np.ndarray) -> list[np.ndarray]:
            """Per category: the sum of `values` (units x ...) over the drawn groups of that category."""
            picked = cat[idx]
            out = []
            for c in range(len(categories)):
                mask = picked == c
                if values.ndim == 2:
                    mask = mask[..., None]
                out.append((values[idx] * mask).sum(axis=1))
            return out

        def per_level(name: str, idx: np.ndarray) -> np.ndarray:  # rows x levels, mean over the scored categories
            nums = category_sums(soft if name == "ssr" else hard, idx)
            dens = category_sums(counted, idx)
            valids = category_sums(valid_items, idx)
            rates = [np.where(v > 0, ratio(num, den), np.nan) for num, den, v in zip(nums, dens, valids)]
            return np.stack([nanmean_rows([r[:, k] for r in rates]) for k in range(nl)], axis=1)

        if metric == "csl":
            def csl_stat(idx):
                nums = category_sums(csl * csl_eligible, idx)
                dens = category_sums(csl_eligible, idx)
                per_cat = [ratio(num, den) for num, den in zip(nums, dens)]
                if not exclude:
                    per_cat = [np.where(v > 0, r, np.nan)
                               for r, v in zip(per_cat, category_sums(csl_valid_levels, idx))]
                return nanmean_rows(per_cat)
            return csl_stat
        name, _, which = metric.partition("_")
        if which == "avg":
            return lambda idx: nanmean_rows(list(per_level(name, idx).T))
        k = LEVELS.index(int(which[len("lv"):]))
        return lambda idx: per_level(name, idx)[:, k]

    def outcomes(self, units, metric=""):
        """HSR per item (invalid judgments wrong), levels in order within each group."""
        items = [s for u in units for s in sorted(u, key=lambda s: s["level"])]
        if metric.startswith("hsr_lv"):
            level = int(metric[len("hsr_lv"):])
            items = [s for s in items if s["level"] == level]
        return [bool(s["hard"]) and s.get("judgment_valid", True) is not False for s in items]


# ------------------------------------------------------------------------------------------------ LLMBar: pairs
class PairRecords(Records):
    """LLMBar: one unit per pair, strata = subsets."""

    name = "llmbar"
    unit = "pair"
    #: the refiner's decoding (it is the model under test here), recorded in the scorer's `judge` section
    decoding_settings = ("judge.votes", "judge.sampling", "judge.seed")

    def metrics(self, samples=None):
        flat = tuple(f"{w}_{m}" for m in ("acc", "f1", "agreement")
                     for w in ("natural", "adversarial", "overall") + tuple(s.lower() for s in SUBSETS[1:]))
        nested = tuple(f"per_subset.{s}.{m}" for s in SUBSETS for m in ("acc", "f1", "positional_agreement"))
        return flat + nested + ("positional_agreement",)

    def unit_key(self, unit):
        return unit["subset"], unit["index"]

    def strata(self, units):
        return [u["subset"] for u in units]

    def prepare(self, metric, units, **settings):
        pointwise = "predicted" in units[0]
        n = len(units)
        correct, tp, fp, fn, agree = (np.zeros(n) for _ in range(5))
        for i, u in enumerate(units):
            if pointwise:
                require_fields(u, ("subset", "predicted", "truth"), self.name)
                for pred, truth in zip(u["predicted"], u["truth"]):
                    correct[i] += pred == truth
                    tp[i] += pred == 1 and truth == 1
                    fp[i] += pred == 1 and truth == 0
                    fn[i] += pred != 1 and truth == 1
            else:
                require_fields(u, ("subset", "label", "choice_original", "choice_swapped"), self.name)
                correct[i] = (u["choice_original"] == u["label"]) + (u["choice_swapped"] == u["label"])
                agree[i] = u["choice_original"] == u["choice_swapped"]
        unknown = {u["subset"] for u in units} - set(SUBSETS)
        if unknown:
            raise SparError(f"unknown subsets {sorted(unknown)} (expected {', '.join(SUBSETS)})")
        present = [s for s in SUBSETS if any(u["subset"] == s for u in units)]
        sub = np.array([present.index(u["subset"]) for u in units])
        what = metric.rsplit(".", 1)[-1].rsplit("_", 1)[-1]  # acc | f1 | agreement
        if metric.endswith("positional_agreement"):
            what = "agreement"
        if (what == "f1" and not pointwise) or (what == "agreement" and pointwise):
            raise SparError(f"{metric} needs {'pointwise' if what == 'f1' else 'pairwise'} judgments")

        def per_subset(idx: np.ndarray) -> dict[str, np.ndarray]:
            out = {}
            picked = sub[idx]
            for j, name in enumerate(present):
                mask = picked == j
                pairs = mask.sum(axis=1).astype(float)
                if what == "acc":
                    out[name] = ratio((correct[idx] * mask).sum(axis=1), 2 * pairs)
                elif what == "agreement":
                    out[name] = ratio((agree[idx] * mask).sum(axis=1), pairs)
                else:
                    t, f_p, f_n = ((a[idx] * mask).sum(axis=1) for a in (tp, fp, fn))
                    value = np.where(t > 0, ratio(2 * t, 2 * t + f_p + f_n), 0.0)
                    out[name] = np.where(pairs > 0, value, np.nan)
            return out

        if metric.startswith("per_subset."):
            subset = metric.split(".")[1]
            return lambda idx: per_subset(idx).get(subset, nan_rows(idx.shape[0]))
        where = "overall" if metric == "positional_agreement" else metric.rsplit("_", 1)[0]
        by_lower = {s.lower(): s for s in SUBSETS}

        def summary(idx):
            values = per_subset(idx)
            if where in by_lower:
                return values.get(by_lower[where], nan_rows(idx.shape[0]))
            if where == "adversarial":
                cols = [values[s] for s in ADVERSARIAL if s in values]
                return nanmean_rows(cols) if cols else nan_rows(idx.shape[0])
            return nanmean_rows(list(values.values()))
        return summary

    def outcome_unit(self, metric):
        """Accuracy of one subset is a pooled proportion of judgments (two per pair: clustered); the adversarial
        and overall accuracies are means over subsets, so they are tested with the stratified bootstrap."""
        if not metric.endswith("acc") or metric in ("adversarial_acc", "overall_acc"):
            return ""
        subsets = _subsets_of(metric)
        return "judgment" if subsets is not None and len(subsets) == 1 else ""

    def outcomes(self, units, metric=""):
        """One outcome per judgment (pointwise: two per pair; pairwise: one per presentation order), restricted to
        the subsets the metric covers."""
        subsets = _subsets_of(metric)
        out = []
        for s in units:
            if subsets is not None and s["subset"] not in subsets:
                continue
            if "predicted" in s:
                out += [p == t for p, t in zip(s["predicted"], s["truth"])]
            else:
                out += [s["choice_original"] == s["label"], s["choice_swapped"] == s["label"]]
        return out


def _subsets_of(metric: str) -> tuple[str, ...] | None:
    """The subsets a judge metric covers (None: all)."""
    if metric.startswith("per_subset."):
        return (metric.split(".")[1],)
    where = metric.rsplit("_", 1)[0]
    if where == "adversarial":
        return ADVERSARIAL
    match = [s for s in SUBSETS if s.lower() == where]
    return tuple(match) or None


# ------------------------------------------------------------------------------------------- refinement: items
class ItemRecords(Records):
    """Refinement: one unit per item."""

    name = "refinement"
    unit = "item"

    def metrics(self, samples=None):
        return ("accuracy",)

    def unit_key(self, unit):
        return unit["prompt"]

    def prepare(self, metric, units, **settings):
        for u in units:
            require_fields(u, ("follows",), self.name)
        follows = np.array([bool(u["follows"]) for u in units], float)
        return lambda idx: follows[idx].sum(axis=1) / idx.shape[1]

    def outcome_unit(self, metric):
        return "item" if metric == "accuracy" else ""

    def outcomes(self, units, metric=""):
        return [bool(s["follows"]) for s in units]


# ---------------------------------------------------------------------------------- any other: per-sample means
ID_FIELDS = ("doc_id", "key", "index", "id", "prompt")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or isinstance(value, bool)


class MeanRecords(Records):
    """Any other benchmark: one unit per sample row; a metric is the mean of a numeric per-row field (`name`, or
    `name,filter` for rows whose `filter` field is `filter`, as lm-eval logs its samples)."""

    unit = "sample"

    def metrics(self, samples=None):
        if not samples:
            return ()
        names = []
        filters = list(dict.fromkeys(s.get("filter") for s in samples if isinstance(s, dict) and "filter" in s))
        for key, value in samples[0].items():
            if key in ID_FIELDS or not _number(value):
                continue
            names.append(key)
            names += [f"{key},{f}" for f in filters if f is not None]
        return tuple(names)

    def check_metric(self, metric, samples=None):
        if samples is not None:
            super().check_metric(metric, samples)

    @staticmethod
    def _field(metric: str) -> tuple[str, str | None]:
        name, _, flt = metric.partition(",")
        return name, (flt or None)

    def select(self, samples: Sequence[dict], metric: str) -> list[dict]:
        """The rows a metric is the mean over (those of its filter, when the rows have filters)."""
        name, flt = self._field(metric)
        rows = [s for s in samples if flt is None or "filter" not in s or s.get("filter") == flt]
        if not rows:
            raise SparError(f"{self.name}: no samples for {metric!r}")
        for s in rows:
            if not isinstance(s, dict) or not _number(s.get(name)):
                raise SparError(f"{self.name}: samples need a numeric field {name!r} for the metric {metric!r}")
        return rows

    def unit_key(self, unit):
        for field in ID_FIELDS:
            if field in unit:
                return unit.get("filter"), field, unit[field]
        raise SparError(f"{self.name}: samples need one of {', '.join(ID_FIELDS)} to be paired across runs")

    def prepare(self, metric, units, **settings):
        name, _ = self._field(metric)
        values = np.array([float(u[name]) for u in self.select(units, metric)], float)
        if len(values) != len(units):
            raise SparError(f"{self.name}: select the rows of {metric!r} first (units_for)")
        return lambda idx: values[idx].mean(axis=1)

    def units_for(self, samples: Sequence[dict], metric: str) -> list:
        """The units of `metric`: the rows of its filter."""
        return self.select(samples, metric)

    def outcome_unit(self, metric):
        return "sample"

    def outcomes(self, units, metric=""):
        name, _ = self._field(metric)
        values = [float(u[name]) for u in units]
        if any(v not in (0.0, 1.0) for v in values):
            raise SparError(f"{self.name}: {metric!r} is not a right/wrong outcome per sample")
        return [v == 1.0 for v in values]


__all__ = ["ID_FIELDS", "PromptRecords", "GroupRecords", "PairRecords", "ItemRecords", "MeanRecords"]
