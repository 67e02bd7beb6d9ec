"""Importing LLMBar judgments made elsewhere: spar's JSONL (texts or parsed verdicts), the official evaluator's
result.json, the official verdict parsers (Vanilla, CoT, Swap, Swap_CoT, Rating), the checks on bad input with
their exact one-line errors, counted exclusions, partial files, and (with $SPAR_DATA_DIR holding LLMBar's
evaluator outputs) the official statistics reproduced for every strategy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluators.judging import JudgeConfig
from evaluators.llmbar import (SUBSETS, Judgment, LLMBarEvaluator, official_parser, pairwise_choices, parse_cot,
                               parse_rating, parse_vanilla)
from harness.core.errors import DataError, SparError

YES = "Step-by-step verification: fine\nFinal Judgement (if the Output accurately follows the Prompt): Yes"
NO = "Final Judgement (if the Output accurately follows the Prompt): No"
LABELS = (1, 2, 2, 1)  # the llmbar_dir fixture: 4 pairs per subset


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _pointwise_rows(subsets=SUBSETS, n=4):
    return [{"subset": s, "index": i, "output": k, "judgment": YES if LABELS[i] == k else NO}
            for s in subsets for i in range(n) for k in (1, 2)]


def _pairwise_rows(subsets=SUBSETS, n=4):
    # a perfect judge: original order shows output_1 as (a); swapped shows output_2 as (a)
    return [{"subset": s, "index": i, "order": order,
             "judgment": "Output (a)" if (LABELS[i] == 1) == (order == "original") else "Output (b)"}
            for s in subsets for i in range(n) for order in ("original", "swapped")]


def _ev(protocol="pointwise", votes=1, **opts):
    return LLMBarEvaluator({"protocol": protocol, **opts}, JudgeConfig(votes=votes))


def _score(ev, data, path, **kw):
    matched, outputs = ev.match_outputs(data, str(path), **kw)
    return ev.score(matched, outputs).metrics


@pytest.fixture()
def pointwise(llmbar_dir):
    ev = _ev("pointwise")
    return ev, ev.load(str(llmbar_dir))


@pytest.fixture()
def pairwise(llmbar_dir):
    ev = _ev("pairwise")
    return ev, ev.load(str(llmbar_dir))


# -- bad input: one exact line naming file:line and field --------------------------------------------------------

N = "Natural"
CHOICES = "(choose from Natural, Neighbor, GPTInst, GPTOut, Manual)"
POINTWISE_BAD = [
    ("unknown subset", [{"subset": "Natual", "index": 0, "output": 1, "judgment": YES}], 1,
     f"field 'subset': unknown subset 'Natual' {CHOICES}"),
    ("missing subset", [{"index": 0, "output": 1, "judgment": YES}], 1, f"field 'subset': missing {CHOICES}"),
    ("index past the end", [{"subset": N, "index": 4, "output": 1, "judgment": YES}], 1,
     "field 'index': 4 is past the end of Natural (4 pairs, indices from 0)"),
    ("negative index", [{"subset": N, "index": -1, "output": 1, "judgment": YES}], 1,
     "field 'index': must be 0 or more, got -1"),
    ("bool index", [{"subset": N, "index": True, "output": 1, "judgment": YES}], 1,
     "field 'index': expected a 0-based integer, got bool True"),
    ("string index", [{"subset": N, "index": "0", "output": 1, "judgment": YES}], 1,
     "field 'index': expected a 0-based integer, got str '0'"),
    ("float index", [{"subset": N, "index": 1.0, "output": 1, "judgment": YES}], 1,
     "field 'index': expected a 0-based integer, got float 1.0"),
    ("missing index", [{"subset": N, "output": 1, "judgment": YES}], 1, "field 'index': missing"),
    ("output 3", [{"subset": N, "index": 0, "output": 3, "judgment": YES}], 1,
     "field 'output': must be one of 1, 2, got 3"),
    ("bool output", [{"subset": N, "index": 0, "output": True, "judgment": YES}], 1,
     "field 'output': must be one of 1, 2, got True"),
    ("pairwise line", [{"subset": N, "index": 0, "order": "original", "judgment": YES}], 1,
     "field 'output': missing (this line has 'order': pairwise judgments; set llmbar.protocol=pairwise)"),
    ("duplicate line", [{"subset": N, "index": 0, "output": 1, "judgment": YES},
                        {"subset": N, "index": 0, "output": 2, "judgment": NO},
                        {"subset": N, "index": 0, "output": 1, "judgment": NO}], 3,
     "field 'output': a second judgment for Natural #0 output 1 (first at line 1)"),
    ("missing half", [{"subset": N, "index": 0, "output": 1, "judgment": YES},
                      {"subset": N, "index": 0, "output": 2, "judgment": NO},
                      {"subset": N, "index": 1, "output": 2, "judgment": YES}], 3,
     "field 'output': Natural #1 has no line for output 1; only this line's output 2"),
    ("too many votes", [{"subset": N, "index": 0, "output": 1, "judgments": [YES, YES, NO]}], 1,
     "field 'judgments': 3 judgments, but the judge is asked for 1 vote per output (judge votes=1); set the "
     "judge's votes to score more"),
    ("no judgment", [{"subset": N, "index": 0, "output": 1}], 1,
     "field 'judgment': missing: give `judgment` (text), `judgments` (list of texts) or `verdict` (parsed)"),
    ("judgment and verdict", [{"subset": N, "index": 0, "output": 1, "judgment": YES, "verdict": "Yes"}], 1,
     "field 'verdict': give only one of judgment, verdict"),
    ("judgment not text", [{"subset": N, "index": 0, "output": 1, "judgment": 1}], 1,
     "field 'judgment': expected str, got int"),
    ("empty votes", [{"subset": N, "index": 0, "output": 1, "judgments": []}], 1,
     "field 'judgments': expected a non-empty list of texts"),
    ("bad verdict", [{"subset": N, "index": 0, "output": 1, "verdict": "maybe"}], 1,
     "field 'verdict': pointwise verdicts are Yes/No, 1/0, true/false or null; got 'maybe'"),
    ("verdict 2", [{"subset": N, "index": 0, "output": 1, "verdict": 2}], 1,
     "field 'verdict': pointwise verdicts are Yes/No, 1/0, true/false or null; got 2"),
    ("synthesis pointwise", [{"subset": N, "index": 0, "output": 1, "judgment": YES, "synthesis": "x"}], 1,
     "field 'synthesis': only the swap and swap_cot pairwise parsers read a synthesis stage (llmbar."
     "pairwise_parser=auto, protocol=pointwise)"),
]


@pytest.mark.parametrize("case,rows,line,message", POINTWISE_BAD, ids=[c[0] for c in POINTWISE_BAD])
def test_pointwise_bad_input_is_one_line_naming_file_line_and_field(pointwise, tmp_path, case, rows, line, message):
    ev, data = pointwise
    path = _write(tmp_path / "j.jsonl", rows)
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(path), allow_partial=True)
    assert str(err.value) == f"{path}:{line}: {message}"
    assert "\n" not in str(err.value)


PAIRWISE_BAD = [
    ("order name", [{"subset": N, "index": 0, "order": "reversed", "judgment": "Output (a)"}], 1,
     "field 'order': must be one of 'original', 'swapped', got 'reversed'"),
    ("missing order", [{"subset": N, "index": 0, "order": "original", "judgment": "Output (a)"},
                       {"subset": N, "index": 0, "order": "swapped", "judgment": "Output (b)"},
                       {"subset": "GPTOut", "index": 3, "order": "swapped", "judgment": "Output (b)"}], 3,
     "field 'order': GPTOut #3 has no line for order 'original'; only this line's order 'swapped'"),
    ("two judgments per order", [{"subset": N, "index": 0, "order": "original",
                                  "judgments": ["Output (a)", "Output (b)"]}], 1,
     "field 'judgments': 2 judgments, but pairwise takes one judgment per order"),
    ("duplicate order", [{"subset": "Manual", "index": 2, "order": "swapped", "verdict": "a"},
                         {"subset": "Manual", "index": 2, "order": "swapped", "verdict": "b"}], 2,
     "field 'order': a second judgment for Manual #2 order 'swapped' (first at line 1)"),
    ("bad pairwise verdict", [{"subset": N, "index": 0, "order": "original", "verdict": "c"}], 1,
     "field 'verdict': pairwise verdicts name the output as shown on this line's order: a/b, (a)/(b), Output (a)/"
     "Output (b), 1/2 or null; got 'c'"),
    ("pointwise line", [{"subset": N, "index": 0, "output": 1, "judgment": "Output (a)"}], 1,
     "field 'order': missing (this line has 'output': pointwise judgments; set llmbar.protocol=pointwise)"),
]


@pytest.mark.parametrize("case,rows,line,message", PAIRWISE_BAD, ids=[c[0] for c in PAIRWISE_BAD])
def test_pairwise_bad_input_is_one_line_naming_file_line_and_field(pairwise, tmp_path, case, rows, line, message):
    ev, data = pairwise
    path = _write(tmp_path / "j.jsonl", rows)
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(path), allow_partial=True)
    assert str(err.value) == f"{path}:{line}: {message}"


def test_blank_lines_do_not_shift_line_numbers(pointwise, tmp_path):
    ev, data = pointwise
    path = _write(tmp_path / "j.jsonl", ["", {"subset": N, "index": 0, "output": 1, "judgment": YES}, "",
                                         {"subset": N, "index": 9, "output": 1, "judgment": YES}])
    with pytest.raises(DataError, match=r"j\.jsonl:4: field 'index': 9 is past the end"):
        ev.match_outputs(data, str(path), allow_partial=True)


def test_votes_up_to_the_judges_are_accepted(llmbar_dir, tmp_path):
    ev = _ev("pointwise", votes=3)
    data = ev.load(str(llmbar_dir))
    rows = [dict(r, judgments=[r.pop("judgment")] * 3) for r in _pointwise_rows()]
    assert _score(ev, data, _write(tmp_path / "j.jsonl", rows))["overall_acc"] == 1.0


def test_partial_file_is_an_error_unless_allowed(pointwise, tmp_path):
    ev, data = pointwise
    path = _write(tmp_path / "j.jsonl", _pointwise_rows(("Natural",), 3))
    with pytest.raises(SparError) as err:
        ev.match_outputs(data, str(path))
    assert str(err.value) == (
        f"{path}: judgments for 3 of the 20 LLMBar pairs loaded (Natural 3/4, Neighbor 0/4, GPTInst 0/4, GPTOut 0/4, "
        "Manual 0/4; first missing: Natural #3); score them anyway with --allow-partial")
    m = _score(ev, data, path, allow_partial=True)
    assert m["partial"] is True and m["coverage"]["scored"] == 3 and m["coverage"]["total"] == 20
    assert m["coverage"]["per_subset"]["Natural"] == {"scored": 3, "total": 4, "excluded": 0}
    assert m["natural_acc"] == 1.0 and m["neighbor_acc"] is None and m["adversarial_acc"] is None
    rows = dict(ev.summary_rows(m))
    assert rows["PARTIAL: pairs scored"] == "3 of 20" and rows["Natural acc"] == 1.0
    assert "Neighbor acc" not in rows
    (title, cols, table), = ev.detail_tables(m)
    assert "PARTIAL" in title and table[0][:3] == ["Natural", 3, 4] and table[1][:3] == ["Neighbor", 0, 4]


def test_full_file_reports_full_coverage(pointwise, tmp_path):
    ev, data = pointwise
    m = _score(ev, data, _write(tmp_path / "j.jsonl", _pointwise_rows()))
    assert m["partial"] is False and m["coverage"]["scored"] == m["coverage"]["total"] == 20
    assert m["counts"]["excluded_lines"] == m["counts"]["excluded_pairs"] == 0 and m["excluded"] == {}
    names = [name for name, _ in ev.summary_rows(m)]
    assert names == [f"{s} {k}" for s in SUBSETS for k in ("acc", "F1")] + [
        "Adversarial avg acc", "Adversarial avg F1", "Overall avg acc", "Overall avg F1"]


def test_skip_invalid_counts_exclusions_by_reason_and_drops_the_pair(pointwise, tmp_path):
    ev, data = pointwise
    rows = _pointwise_rows()
    rows[0] = {"subset": N, "index": 0, "output": 1, "judgments": [YES, YES]}  # too many votes: pair excluded
    rows[3]["index"] = True  # Natural #1 output 2: bad index -> its other line is then a missing half
    rows += [{"subset": "Natual", "index": 0, "output": 1, "judgment": YES},  # unknown subset
             dict(_pointwise_rows(("Manual",))[5]),  # duplicate of Manual #2 output 2
             "{not json"]
    path = _write(tmp_path / "j.jsonl", rows)
    with pytest.raises(DataError):
        ev.match_outputs(data, str(path))
    m = _score(ev, data, path, skip_invalid=True)
    assert m["excluded"] == {"too_many_votes": 1, "bad_index": 1, "unknown_subset": 1, "duplicate": 1,
                             "malformed": 1, "missing_half": 1, "same_pair": 3}
    assert m["counts"]["excluded_lines"] == 9  # 43 lines, 17 pairs scored from 34
    assert m["counts"]["excluded_pairs"] == 3  # Natural #0, Natural #1, Manual #2
    assert m["excluded_by_subset"] == {"Natural": 2, "Manual": 1}
    assert m["per_subset"]["Natural"]["pairs"] == 2 and m["per_subset"]["Natural"]["excluded_pairs"] == 2
    assert m["coverage"]["scored"] == 17 and m["partial"] is True  # excluded pairs leave the numbers partial
    assert m["overall_acc"] == 1.0
    rows = dict(ev.summary_rows(m))
    assert rows["excluded lines"] == 9 and rows["excluded pairs"] == 3 and rows["excluded: duplicate"] == 1
    (_, cols, table), = ev.detail_tables(m)
    assert table[0][cols.index("excluded pairs")] == 2


def test_every_pair_excluded_is_an_error(pointwise, tmp_path):
    ev, data = pointwise
    path = _write(tmp_path / "j.jsonl", [{"subset": N, "index": 0, "output": 1, "judgments": [YES, NO]}])
    with pytest.raises(SparError, match="every pair with judgments was excluded"):
        ev.match_outputs(data, str(path), skip_invalid=True, allow_partial=True)


def test_lines_for_pairs_left_out_by_limit_are_ignored(llmbar_dir, tmp_path):
    ev = _ev("pointwise")
    data = ev.load(str(llmbar_dir), limit=2)
    m = _score(ev, data, _write(tmp_path / "j.jsonl", _pointwise_rows()))
    assert m["coverage"]["scored"] == m["coverage"]["total"] == 10
    assert m["coverage"]["outside_selection"] == 20 and m["partial"] is False


# -- parsed verdicts ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("yes,no", [("Yes", "No"), (" yes ", "NO"), (1, 0), (True, False)])
def test_pointwise_parsed_verdicts(pointwise, tmp_path, yes, no):
    ev, data = pointwise
    rows = [{k: v for k, v in r.items() if k != "judgment"} | {"verdict": yes if r["judgment"] == YES else no}
            for r in _pointwise_rows()]
    m = _score(ev, data, _write(tmp_path / "j.jsonl", rows))
    assert m["overall_acc"] == 1.0 and m["overall_f1"] == 1.0 and m["counts"]["unparseable"] == 0


def test_pointwise_null_verdict_is_no_verdict_and_wrong(pointwise, tmp_path):
    ev, data = pointwise
    rows = _pointwise_rows()
    rows[0] = {"subset": N, "index": 0, "output": 1, "verdict": None}  # the right output (label 1) unjudged
    m = _score(ev, data, _write(tmp_path / "j.jsonl", rows))
    nat = m["per_subset"]["Natural"]
    assert nat["no_verdict"] == 1 and nat["unparseable"] == 0 and nat["acc"] == 7 / 8 and nat["fn"] == 1


@pytest.mark.parametrize("a,b", [("a", "b"), ("(a)", "(b)"), ("Output (a)", "output (b)"), (1, 2), (" A ", "B")])
def test_pairwise_parsed_verdicts_name_the_position_shown(pairwise, tmp_path, a, b):
    ev, data = pairwise
    rows = [{k: v for k, v in r.items() if k != "judgment"} | {"verdict": a if r["judgment"] == "Output (a)" else b}
            for r in _pairwise_rows()]
    m = _score(ev, data, _write(tmp_path / "j.jsonl", rows))
    assert m["overall_acc"] == 1.0 and m["positional_agreement"] == 1.0


def test_pairwise_mixed_texts_verdicts_and_null(pairwise, tmp_path):
    ev, data = pairwise
    rows = [{"subset": N, "index": 0, "order": "original", "verdict": "a"},  # label 1: right
            {"subset": N, "index": 0, "order": "swapped", "judgment": "Output (b)"},  # output_1 again: right
            {"subset": N, "index": 1, "order": "original", "verdict": None},  # no verdict
            {"subset": N, "index": 1, "order": "swapped", "verdict": 1}]  # swapped (a) = output_2 = label: right
    m = _score(ev, data, _write(tmp_path / "j.jsonl", rows), allow_partial=True)
    nat = m["per_subset"]["Natural"]
    assert (nat["correct_original"], nat["correct_swapped"], nat["agreements"]) == (1, 2, 1)
    assert nat["no_verdict"] == 1 and nat["unparseable"] == 0


# -- the official parsers on hand-made official-style outputs ----------------------------------------------------

COT_B = ("Output (a) and Output (b) both provide three niche groups. However, Output (b) seems more specific. "
         "Therefore, Output (b) is better.")
COT_A = "Output (b) is longer, but Output (a) follows the instruction. Therefore, Output (a) is better."


@pytest.mark.parametrize("text,vanilla,cot", [
    ("Output (a)", 1, None), ("Output (b)", 2, None), ("  Output (b)\n", 2, None), ("I pick\nOutput (b)", 2, None),
    ("Output (a) and Output (b)", 1, None), ("The better is Output (b)", None, None), ("output (a)", None, None),
    ("x\n  Output (a)", None, None), ("", None, None),
    (COT_B, 1, 2), (COT_A, 2, 1),  # vanilla misreads CoT answers: they open by naming outputs
    ("Output (b) is better. Or rather, Output (a) is better.", 2, 1),  # cot: (a) wins wherever it is
    ("Therefore, Output (b) is better", None, None),  # the '.' needs a character
    ("Therefore, Output (b) is better!", None, 2),  # ... any character
])
def test_vanilla_and_cot_rules(text, vanilla, cot):
    assert parse_vanilla(text) == vanilla
    assert parse_cot(text) == cot


def J(text=None, synthesis=None, **kw):
    return Judgment(texts=(text,) if text is not None else (), synthesis=synthesis, **kw)


def test_swap_parsers_use_the_synthesis_stage_only_when_the_orders_disagree():
    agree = (J(COT_A), J("Output (b) is better."))  # original (a)=output_1; swapped (b)=output_1
    assert pairwise_choices("swap", *agree)[:2] == (1, 1)
    disagree = (J(COT_A, synthesis="Output (b)"), J(COT_A, synthesis="Output (b)"))  # 1 vs 2 at the first stage
    a, b, info = pairwise_choices("swap", *disagree)
    assert (a, b) == (2, 1) and info["stage"] == "synthesis" and info["first_stage"] == [1, 2]
    # swap_cot reads the synthesis with the CoT rule: a bare 'Output (b)' has no verdict there
    assert pairwise_choices("swap_cot", *disagree)[:2] == (None, None)
    cot_synth = (J(COT_A, synthesis=COT_B), J(COT_A, synthesis=COT_A))
    assert pairwise_choices("swap_cot", *cot_synth)[:2] == (2, 2)
    # one order without a first-stage verdict: no synthesis, the first stage stands
    one_none = (J(COT_A, synthesis="Output (b)"), J("no idea", synthesis="Output (b)"))
    assert pairwise_choices("swap", *one_none)[:2] == (1, None)


def test_rating_rule():
    assert parse_rating("7", "5") == (1, 1)
    assert parse_rating(" 3\n", "8") == (2, 2)
    assert parse_rating("5", "5") == (2, 1)  # a tie disagrees with itself across orders
    assert parse_rating("seven", "5") == (1, 2)
    assert parse_rating("7.5", "5") == (1, 2)


def test_recorded_and_official_parser_names():
    assert pairwise_choices("recorded", J("x", recorded=2, has_recorded=True), J("y", recorded=None))[:2] == (2, None)
    assert official_parser("GPT-4/CoT") == "cot" and official_parser("PaLM2/CoT") == "vanilla"
    assert official_parser("LLaMA2/Swap") == "swap" and official_parser("Falcon/Swap_CoT") == "swap_cot"
    assert official_parser("GPT-4/Rating_Metrics_Reference") == "rating"
    assert official_parser("ChatGPT/Metrics_Reference") == official_parser("GPT-4/Vanilla_NoRules") == "vanilla"
    assert official_parser("GPT-4/Mystery") is None


def test_jsonl_with_the_cot_parser(llmbar_dir, tmp_path):
    ev = _ev("pairwise", pairwise_parser="cot")
    data = ev.load(str(llmbar_dir))
    rows = [dict(r, judgment=COT_A if r["judgment"] == "Output (a)" else COT_B) for r in _pairwise_rows()]
    path = _write(tmp_path / "j.jsonl", rows)
    assert _score(ev, data, path)["overall_acc"] == 1.0
    vanilla = _score(_ev("pairwise"), data, path)  # the Vanilla rule misreads the same file
    assert vanilla["overall_acc"] == 0.0 and vanilla["pairwise_parser"] == "vanilla"


def test_jsonl_with_the_swap_parser_needs_the_synthesis_when_orders_disagree(llmbar_dir, tmp_path):
    ev = _ev("pairwise", pairwise_parser="swap")
    data = ev.load(str(llmbar_dir))
    rows = [dict(r, judgment=COT_A if r["judgment"] == "Output (a)" else COT_B) for r in _pairwise_rows()]
    rows[0] = dict(rows[0], judgment=COT_B if rows[0]["judgment"] == COT_A else COT_A)  # Natural #0 disagrees
    path = _write(tmp_path / "j.jsonl", rows)
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(path))
    assert str(err.value) == (f"{path}:1: field 'synthesis': the two orders of Natural #0 disagree after the first "
                              "stage, so the swap parser needs the synthesis-stage completion")
    rows[0]["synthesis"], rows[1]["synthesis"] = "Output (b)", "Output (a)"  # settles on output_2: wrong (label 1)
    m = _score(ev, data, _write(path, rows))
    assert m["per_subset"]["Natural"]["correct_both"] == 3 and m["per_subset"]["Natural"]["agreements"] == 4


def test_parsers_for_result_files_only_and_generation(llmbar_dir, tmp_path):
    data = _ev("pairwise").load(str(llmbar_dir))
    path = _write(tmp_path / "j.jsonl", _pairwise_rows())
    with pytest.raises(SparError, match="pairwise_parser=rating reads official result.json files only"):
        _ev("pairwise", pairwise_parser="rating").match_outputs(data, str(path))
    from evaluators.base import GenerationConfig
    with pytest.raises(SparError, match="spar's own pairwise judge is asked with LLMBar's Vanilla prompt"):
        _ev("pairwise", pairwise_parser="cot").requests(data, GenerationConfig())
    assert len(_ev("pairwise").requests(data, GenerationConfig())) == 40


# -- LLMBar's result.json ----------------------------------------------------------------------------------------

def _pair(subset, i):
    return {"input": f"{subset} instruction {i}", "output_1": f"first {i}", "output_2": f"second {i}",
            "label": LABELS[i]}


def _final(original, swapped, w_orig, w_swap):
    return {"swap = False": {"completion": [original, "stop"], "winner": w_orig},
            "swap = True": {"completion": [swapped, "stop"], "winner": w_swap}}


def _cot_record(subset, i, right=True):
    """A GPT-4/CoT-style record: reasoning that mentions both outputs, the verdict at the end."""
    good = LABELS[i] if right else 3 - LABELS[i]
    original = COT_A if good == 1 else COT_B  # original order: (a) is output_1
    swapped = COT_A if good == 2 else COT_B  # swapped order: (a) is output_2
    return dict(_pair(subset, i), results=[_final(original, swapped, str(good), str(good))])


def _result_file(root: Path, subset: str, evaluator: str, records: list, one_per_line=False) -> Path:
    folder = root / ("Natural" if subset == "Natural" else f"Adversarial/{subset}") / "evaluators" / evaluator
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    if one_per_line:
        path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    else:
        path.write_text(json.dumps(records, indent=2))  # what evaluate.py's dump_json writes
    return path


def test_result_json_with_the_cot_parser_picked_from_its_path(pairwise, tmp_path):
    ev, data = pairwise
    records = [_cot_record("Natural", i, right=i != 2) for i in (3, 1, 0, 2)]  # any order: matched by content
    path = _result_file(tmp_path / "out", "Natural", "GPT-4/CoT", records)
    matched, outputs = ev.match_outputs(data, str(path), allow_partial=True)  # format detected
    assert matched.source["judgments"]["format"] == "llmbar-result"
    assert matched.source["judgments"]["pairwise_parser"] == "cot"
    assert matched.source["judgments"]["official_evaluator"] == "GPT-4/CoT"
    result = ev.score(matched, outputs)
    nat = result.metrics["per_subset"]["Natural"]
    assert (nat["correct_original"], nat["correct_swapped"], nat["agreements"]) == (3, 3, 4)
    assert result.metrics["counts"]["differs_from_recorded"] == 0
    starts = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == "  {"]
    assert [s["index"] for s in result.samples] == [0, 1, 2, 3]
    assert result.samples[0]["lines"] == [starts[2]] * 2  # index 0 is the third record
    # the Vanilla rule misreads these: every COT_B answer reads as (a)
    vanilla = _score(_ev("pairwise", pairwise_parser="vanilla"), data, path, allow_partial=True)
    assert vanilla["counts"]["differs_from_recorded"] == 4
    assert _score(_ev("pairwise", pairwise_parser="recorded"), data, path, allow_partial=True)[
        "per_subset"]["Natural"]["correct_both"] == 3


def test_result_folder_reads_one_evaluator_across_subsets(pairwise, tmp_path):
    ev, data = pairwise
    root = tmp_path / "LLMBar"
    for subset in SUBSETS:
        _result_file(root, subset, "GPT-4/CoT", [_cot_record(subset, i) for i in range(4)])
        _result_file(root, subset, "GPT-4/Vanilla", [dict(_pair(subset, i), results=[_final(
            "Output (a)", "Output (a)", "1", "2")]) for i in range(4)])
    with pytest.raises(SparError) as err:
        ev.match_outputs(data, str(root))
    assert str(err.value) == (f"{root}: result.json files of 2 evaluators (GPT-4/CoT, GPT-4/Vanilla); pick one with "
                              "llmbar.result_evaluator")
    cot = _score(_ev("pairwise", result_evaluator="GPT-4/CoT"), data, root)
    assert cot["overall_acc"] == 1.0 and cot["partial"] is False and cot["pairwise_parser"] == "cot"
    first = _score(_ev("pairwise", result_evaluator="GPT-4/Vanilla"), data, root, fmt="llmbar-result")
    assert first["overall_acc"] == 0.5 and first["positional_agreement"] == 0.0


def test_result_json_swap_and_rating_layouts(pairwise, tmp_path):
    ev, data = pairwise
    synth = {"swap = False": {"prompt": "...", "completion": ["Output (a)", "stop"], "winner": "1"},
             "swap = True": {"prompt": "...", "completion": ["Output (b)", "stop"], "winner": "1"}}
    swap = [dict(_pair(N, 0), results=[_final(COT_A, COT_A, "1", "2"), synth]),  # disagreed -> synthesis: 1, 1
            dict(_pair(N, 1), results=[_final(COT_B, COT_A, "2", "2")])]  # agreed on output_2
    path = _result_file(tmp_path, N, "LLaMA2/Swap", swap)
    m = _score(ev, data, path, allow_partial=True)
    assert m["pairwise_parser"] == "swap" and m["counts"]["differs_from_recorded"] == 0
    assert m["per_subset"]["Natural"]["correct_both"] == 2
    missing = [dict(_pair(N, 0), results=[_final(COT_A, COT_A, "1", "2")])]
    path = _result_file(tmp_path, N, "LLaMA2/Swap", missing, one_per_line=True)
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(path), allow_partial=True)
    assert str(err.value) == (f"{path}:2: field 'results': the two orders of Natural #0 disagree after the first "
                              "stage, so the swap parser needs the synthesis-stage completion (results has no "
                              "second stage)")
    rating = [dict(_pair(N, i), results=[["metrics", "stop"], {"score_1": [s1, "stop"], "score_2": [s2, "stop"],
                                                               "swap = False": {"winner": w1},
                                                               "swap = True": {"winner": w2}}])
              for i, (s1, s2, w1, w2) in enumerate([("9", "2", "1", "1"), ("4", "4", "2", "1")])]
    path = _result_file(tmp_path, N, "GPT-4/Rating_Metrics", rating)
    m = _score(ev, data, path, allow_partial=True)
    assert m["pairwise_parser"] == "rating" and m["counts"]["differs_from_recorded"] == 0
    assert m["per_subset"]["Natural"]["agreements"] == 1


RESULT_BAD = [
    ("unknown pair", lambda r: r.update(input="something else"), "unknown_pair",
     "field 'input': no LLMBar pair has this input and these outputs: 'something else'"),
    ("label mismatch", lambda r: r.update(label=2), "label_mismatch",
     "field 'label': 2 but the LLMBar data says 1 for Natural #0 (another LLMBar version?)"),
    ("no results", lambda r: r.update(results=[]), "bad_record", "field 'results': empty"),
    ("no completion", lambda r: r["results"][-1]["swap = True"].pop("completion"), "bad_record",
     "field 'results[-1].swap = True.completion': expected [text, finish_reason]"),
    ("bad winner", lambda r: r["results"][-1]["swap = False"].update(winner=1), "bad_record",
     "field 'results[-1].swap = False.winner': expected \"1\", \"2\" or null, got 1"),
    ("missing label", lambda r: r.pop("label"), "bad_record", "field 'label': missing"),
]


@pytest.mark.parametrize("case,change,reason,message", RESULT_BAD, ids=[c[0] for c in RESULT_BAD])
def test_result_json_bad_records(pairwise, tmp_path, case, change, reason, message):
    ev, data = pairwise
    records = [_cot_record(N, i) for i in range(4)]
    change(records[0])
    path = _result_file(tmp_path, N, "GPT-4/CoT", records, one_per_line=True)
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(path), allow_partial=True)
    assert str(err.value) == f"{path}:2: {message}"
    m = _score(ev, data, path, allow_partial=True, skip_invalid=True)
    assert m["excluded"] == {reason: 1} and m["counts"]["excluded_lines"] == 1
    assert m["coverage"]["scored"] == 3


def test_result_json_duplicate_record_and_other_errors(pairwise, tmp_path):
    ev, data = pairwise
    records = [_cot_record(N, i) for i in range(4)] + [_cot_record(N, 1)]
    path = _result_file(tmp_path, N, "GPT-4/CoT", records, one_per_line=True)
    with pytest.raises(DataError) as err:
        ev.match_outputs(data, str(path), allow_partial=True)
    assert str(err.value) == f"{path}:6: field 'input': a second record for Natural #1 (first at {path}:3)"
    m = _score(ev, data, path, allow_partial=True, skip_invalid=True)
    assert m["excluded"] == {"duplicate": 1, "same_pair": 1} and m["counts"]["excluded_pairs"] == 1
    loose = tmp_path / "elsewhere.json"
    loose.write_text(json.dumps([_cot_record(N, 0)]))
    with pytest.raises(SparError, match="cannot tell which official LLMBar strategy wrote this result.json"):
        ev.match_outputs(data, str(loose), allow_partial=True)
    assert _score(_ev("pairwise", pairwise_parser="cot"), data, loose, allow_partial=True)["natural_acc"] == 1.0
    with pytest.raises(SparError, match="result.json files hold pairwise judgments; set llmbar.protocol=pairwise"):
        _ev("pointwise").match_outputs(data, str(loose), fmt="llmbar-result", allow_partial=True)
    with pytest.raises(SparError, match="unknown format 'csv'"):
        ev.match_outputs(data, str(loose), fmt="csv")
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"input": "a", "input": "b"}\n]')
    with pytest.raises(DataError) as err:
        _ev("pairwise", pairwise_parser="cot").match_outputs(data, str(broken))
    assert str(err.value) == f"{broken}:2: field 'input': given twice in one JSON object (in the record starting here)"


# -- real data: the official statistics of every evaluator output in $SPAR_DATA_DIR/llmbar -----------------------

def _official_outputs(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "llmbar").glob("**/evaluators/*/*/result.json"))
    if not files:
        pytest.skip(f"{data_dir / 'llmbar'} holds no official evaluator outputs (LLMBar's Dataset/LLMBar/**/evaluators/"
                    "<model>/<strategy>/result.json); copy them there to check the parsers against them")
    return files


def _official_statistics(per: dict) -> dict:
    """The first five entries of evaluate.py's statistics.json, formatted as it formats them."""
    n = per["pairs"]
    return {"correct_False": "{} / {} = {}%".format(per["correct_original"], n, per["correct_original"] / n * 100),
            "correct_True": "{} / {} = {}%".format(per["correct_swapped"], n, per["correct_swapped"] / n * 100),
            "correct_average": "{}%".format((per["correct_original"] + per["correct_swapped"]) / 2 / n * 100),
            "correct_both": "{} / {} = {}%".format(per["correct_both"], n, per["correct_both"] / n * 100),
            "equal": "{} / {} = {}%".format(per["agreements"], n, per["agreements"] / n * 100)}


def test_real_official_outputs_reproduce_the_official_statistics(data_dir):
    files = _official_outputs(data_dir)
    ev = _ev("pairwise")
    data = ev.load(str(data_dir / "llmbar"))
    strategies = set()
    for path in files:
        result = ev.score(*ev.match_outputs(data, str(path), allow_partial=True))
        (per,) = result.metrics["per_subset"].values()
        official = json.loads((path.parent / "statistics.json").read_text())
        assert {k: official[k] for k in _official_statistics(per)} == _official_statistics(per), path
        assert result.metrics["counts"]["differs_from_recorded"] == 0, path  # every pair as the official winner
        strategies.add(path.parent.name)
    assert len(strategies) >= 1


def test_real_cot_outputs_are_misread_by_the_vanilla_rule(data_dir):
    files = [f for f in _official_outputs(data_dir) if f.parent.name == "CoT" and f.parent.parent.name != "PaLM2"]
    if not files:
        pytest.skip("no official CoT outputs")
    data = _ev("pairwise").load(str(data_dir / "llmbar"))
    vanilla = _ev("pairwise", pairwise_parser="vanilla")
    differs = sum(vanilla.score(*vanilla.match_outputs(data, str(f), allow_partial=True)).metrics["counts"][
        "differs_from_recorded"] for f in files)
    assert differs > 0


def test_real_folder_of_one_evaluator_covers_all_five_subsets(data_dir):
    files = _official_outputs(data_dir)
    evaluator = "/".join(files[0].parts[-3:-1])
    ev = _ev("pairwise", result_evaluator=evaluator)
    m = _score(ev, ev.load(str(data_dir / "llmbar")), data_dir / "llmbar")
    if m["partial"]:
        pytest.skip(f"{evaluator}: not all five subsets have outputs")
    assert m["coverage"]["scored"] == 419 and m["counts"]["differs_from_recorded"] == 0
