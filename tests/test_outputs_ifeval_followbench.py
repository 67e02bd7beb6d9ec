"""Outputs made elsewhere, for IFEval and FollowBench: reading (bad bytes, repeated JSON keys), matching
(`match_outputs`: validation, coverage, --allow-partial, --skip-invalid, formats) and FollowBench judge outputs that
must never crash a run (nested lists, votes, invalid-judgment policies). No model is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evaluators.followbench import FollowBenchEvaluator, parse_constraints, parse_judgment, vote_constraints
from evaluators.ifeval import IFEvalEvaluator
from evaluators.judging import JudgeConfig
from harness.core.data import iter_jsonl, read_json_list, read_jsonl
from harness.core.errors import DataError, SparError

DATA = Path(__file__).parent / "data"
IFEVAL_TINY = DATA / "ifeval_tiny.jsonl"
LM_EVAL_SAMPLES = DATA / "formats" / "samples_ifeval_2025-01-01T00-00-00.000000.jsonl"
API_OUTPUT = DATA / "formats" / "api_output" / "tiny-model"
PROMPTS = {json.loads(line)["key"]: json.loads(line)["prompt"] for line in IFEVAL_TINY.read_text().splitlines()}


def write_lines(path: Path, *rows) -> Path:
    """One line per row: a dict is dumped as JSON, a str or bytes is written as is."""
    out = b""
    for row in rows:
        out += (row if isinstance(row, bytes) else (row if isinstance(row, str) else json.dumps(row)).encode()) + b"\n"
    path.write_bytes(out)
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(SparError) as exc:
        call(*args, **kwargs)
    assert "\n" not in str(exc.value)
    return str(exc.value)


# -- A. reading JSON and JSONL -------------------------------------------------------------------------------------

def test_non_utf8_bytes_name_line_and_offset(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", {"a": 1}, "", b'{"response": "caf\xe9"}')
    assert error_of(read_jsonl, path) == (f"{path}:3: not UTF-8: byte 0xe9 at byte offset 27 (column 18); "
                                          "save the file as UTF-8")


def test_non_utf8_bytes_in_a_json_list(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'[\n {"a": "ok"},\n {"a": "\xff"}\n]')
    assert error_of(read_json_list, path) == (f"{path}:3: not UTF-8: byte 0xff at byte offset 24 (column 9); "
                                              "save the file as UTF-8")


def test_repeated_key_in_a_jsonl_object(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", {"response": "x"}, '{"response": "a", "response": "b"}')
    assert error_of(read_jsonl, path) == f"{path}:2: field 'response': given twice in one JSON object"


def test_repeated_key_in_a_json_list_names_its_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n {"a": 1,\n  "b": {"a": 2,\n        "c": 3,\n        "c": 4},\n  "d": 5}\n]')
    assert error_of(read_json_list, path) == f"{path}:5: field 'c': given twice in one JSON object"


def test_existing_messages_are_kept(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", {"a": 1}, "{oops", "[1]")
    assert error_of(read_jsonl, path) == f"{path}:2: malformed JSON (Expecting property name enclosed in double " \
                                         "quotes at column 2)"
    write_lines(path, {"a": 1}, "[1]")
    assert error_of(read_jsonl, path) == f"{path}:2: expected a JSON object, got list"
    assert error_of(read_jsonl, tmp_path / "none.jsonl") == f"{tmp_path / 'none.jsonl'}: no such file"


def test_line_numbers_count_blank_lines_and_bom_is_accepted(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n\n{"a": 2}\n')
    assert iter_jsonl(path) == [(1, {"a": 1}), (4, {"a": 2})]
    errors: list = []
    write_lines(path, {"a": 1}, "{bad", '{"a": 1, "a": 2}')
    assert iter_jsonl(path, errors) == [(1, {"a": 1})] and [e.line for e in errors] == [2, 3]


# -- B. IFEval match_outputs ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ifeval():
    ev = IFEvalEvaluator()
    return ev, ev.load(str(IFEVAL_TINY))


def full_ifeval(tmp_path, **extra) -> list[dict]:
    return [{"prompt": PROMPTS[k], "response": f"answer {k}", **extra} for k in (1, 2, 3)]


def test_ifeval_full_file_has_full_coverage(ifeval, tmp_path):
    ev, data = ifeval
    rows = full_ifeval(tmp_path)
    path = write_lines(tmp_path / "r.jsonl", rows[2], rows[0], rows[1])  # any order: the data's order comes back
    matched, responses = ev.match_outputs(data, str(path))
    assert [it.key for it in matched.items] == [1, 2, 3] and responses == ["answer 1", "answer 2", "answer 3"]
    cov = matched.source["coverage"]
    assert cov["scored"] == cov["total"] == 3 and cov["partial"] is False and cov["outside_selection"] == 0
    assert cov["per_category"]["punctuation:no_comma"] == {"scored": 2, "total": 2}
    assert matched.source["responses"]["format"] == "jsonl" and "excluded" not in matched.source
    metrics = ev.score(matched, responses).metrics
    assert metrics["coverage"] == cov and metrics["partial"] is False and "excluded_lines" not in metrics["counts"]


def test_ifeval_duplicate_prompt(ifeval, tmp_path):
    ev, data = ifeval
    rows = full_ifeval(tmp_path)
    path = write_lines(tmp_path / "r.jsonl", rows[0], rows[1], rows[0])
    assert error_of(ev.match_outputs, data, str(path)) == \
        f"{path}:3: field 'prompt': a second response for key 1 (first at line 1)"


def test_ifeval_duplicate_key(ifeval, tmp_path):
    ev, data = ifeval
    path = write_lines(tmp_path / "r.jsonl", {"key": 2, "response": "a"}, {"key": 2, "response": "b"})
    assert error_of(ev.match_outputs, data, str(path)) == \
        f"{path}:2: field 'key': a second response for key 2 (first at line 1)"


@pytest.mark.parametrize("row,message", [
    ({"key": [1], "response": "a"}, "field 'key': expected int, got list"),
    ({"key": "1", "response": "a"}, "field 'key': expected int, got str"),
    ({"key": True, "response": "a"}, "field 'key': expected int, got bool"),
    ({"key": 1, "response": ["a"]}, "field 'response': expected str, got list"),
    ({"prompt": ["x"], "response": "a"}, "field 'prompt': expected str, got list"),
    ({"key": 1}, "field 'response': missing"),
    ({"response": "a"}, "field 'prompt': missing"),
    ({"key": 99, "response": "a"}, "field 'key': key 99 is not in the IFEval data"),
    ({"prompt": "Who?", "response": "a"}, "field 'prompt': prompt not found in the IFEval data: 'Who?'"),
    ({"key": 1, "prompt": "Other", "response": "a"},
     "field 'prompt': differs from the IFEval prompt of key 1: 'Other'"),
])
def test_ifeval_bad_lines(ifeval, tmp_path, row, message):
    ev, data = ifeval
    path = write_lines(tmp_path / "r.jsonl", {"key": 2, "response": "ok"}, row)
    assert error_of(ev.match_outputs, data, str(path)) == f"{path}:2: {message}"


def test_ifeval_partial_file_needs_allow_partial(ifeval, tmp_path):
    ev, data = ifeval
    path = write_lines(tmp_path / "r.jsonl", {"key": 1, "response": "Tea is calm."}, {"key": 3, "response": "apple"})
    assert error_of(ev.match_outputs, data, str(path)) == (
        f"{path}: answers 2 of the 3 IFEval prompts loaded (first missing: key 2); score them anyway with "
        "--allow-partial")
    matched, responses = ev.match_outputs(data, str(path), allow_partial=True)
    assert [it.key for it in matched.items] == [1, 3]
    metrics = ev.score(matched, responses).metrics
    assert metrics["partial"] is True and metrics["coverage"]["scored"] == 2 and metrics["coverage"]["total"] == 3
    assert metrics["counts"]["prompts"] == 2


def test_ifeval_skip_invalid_counts_by_reason(ifeval, tmp_path):
    ev, data = ifeval
    path = write_lines(tmp_path / "r.jsonl", {"key": 1, "response": "a"}, {"key": 1, "response": "again"},
                       {"key": 42, "response": "b"}, {"key": 2, "response": ["c"]}, "{broken",
                       '{"key": 3, "response": "d", "response": "e"}', {"key": 2, "response": "f"},
                       {"key": 3, "response": "g"})
    matched, responses = ev.match_outputs(data, str(path), skip_invalid=True)
    assert responses == ["a", "f", "g"]
    assert matched.source["excluded"] == {"malformed": 2, "duplicate": 1, "unknown_item": 1, "bad_field": 1}
    assert matched.source["excluded_examples"]["unknown_item"] == f"{path}:3: field 'key': key 42 is not in the " \
                                                                  "IFEval data"
    metrics = ev.score(matched, responses).metrics
    assert metrics["excluded"] == matched.source["excluded"] and metrics["partial"] is False
    assert metrics["counts"]["excluded_lines"] == sum(matched.source["excluded"].values())


def test_ifeval_answers_beyond_limit_are_ignored(ifeval, tmp_path):
    ev, _ = ifeval
    data = ev.load(str(IFEVAL_TINY), limit=2)
    path = write_lines(tmp_path / "r.jsonl", *full_ifeval(tmp_path))
    matched, _ = ev.match_outputs(data, str(path))
    assert matched.source["coverage"] == {"scored": 2, "total": 2, "partial": False, "outside_selection": 1,
                                          "per_category": matched.source["coverage"]["per_category"]}


def test_ifeval_unrecognised_format(ifeval, tmp_path):
    ev, data = ifeval
    path = write_lines(tmp_path / "r.jsonl", {"question": "q", "answer": "a"})
    assert error_of(ev.match_outputs, data, str(path)) == (
        f"{path}:1: not an IFEval outputs format (fields: answer, question); --format accepts: jsonl (one object "
        "per line: `key` or `prompt`, and `response`), lm-eval (lm-eval --log_samples output "
        "samples_ifeval_*.jsonl: `doc` and `filtered_resps`/`resps`)")
    assert error_of(ev.match_outputs, data, str(path), fmt="csv") == "--format 'csv': ifeval accepts jsonl, lm-eval"


def test_ifeval_lm_eval_samples_detected_and_scored_as_lm_eval_did(ifeval, tmp_path):
    ev, data = ifeval
    matched, responses = ev.match_outputs(data, str(LM_EVAL_SAMPLES))
    assert matched.source["responses"]["format"] == "lm-eval" and len(responses) == 3
    result = ev.score(matched, responses)
    logged = {json.loads(line)["doc"]["key"]: json.loads(line) for line in LM_EVAL_SAMPLES.read_text().splitlines()}
    for sample in result.samples:  # the verdicts lm-eval logged next to each sample
        assert sample["follow_instruction_list_strict"] == logged[sample["key"]]["inst_level_strict_acc"]
        assert sample["follow_instruction_list_loose"] == logged[sample["key"]]["inst_level_loose_acc"]
    assert result.metrics["prompt_level_strict_acc"] == pytest.approx(2 / 3)
    # lm-eval's --output_path folder (<output>/<model>/samples_ifeval_<date>.jsonl) is found too
    folder = tmp_path / "out" / "model__name"
    folder.mkdir(parents=True)
    shutil.copy(LM_EVAL_SAMPLES, folder)
    again, _ = ev.match_outputs(data, str(tmp_path / "out"))
    assert again.source["responses"]["path"] == str((folder / LM_EVAL_SAMPLES.name).resolve())


def test_ifeval_lm_eval_bad_lines(ifeval, tmp_path):
    ev, data = ifeval
    sample = json.loads(LM_EVAL_SAMPLES.read_text().splitlines()[0])
    path = write_lines(tmp_path / "s.jsonl", dict(sample, filtered_resps=[["nested"]]))
    assert error_of(ev.match_outputs, data, str(path), allow_partial=True) == \
        f"{path}:1: field 'filtered_resps[0]': expected str, got list"
    write_lines(path, dict(sample, doc={"prompt": "x"}))
    assert error_of(ev.match_outputs, data, str(path), allow_partial=True) == f"{path}:1: field 'doc.key': missing"
    write_lines(path, {k: v for k, v in sample.items() if k != "filtered_resps"})  # falls back to resps[0][0]
    matched, responses = ev.match_outputs(data, str(path), allow_partial=True)
    assert responses == sample["resps"][0]
    spar_style = write_lines(tmp_path / "r.jsonl", {"key": 1, "response": "a"})
    assert error_of(ev.match_outputs, data, str(spar_style), fmt="lm-eval") == f"{spar_style}:1: field 'doc': missing"


# -- B. FollowBench match_outputs -------------------------------------------------------------------------------

XSUM = {1: "The storm is coming.", 2: "The storm is coming.", 3: "Newton Stewart is flooding.",
        4: "The town is flooding.", 5: "The town is flooding."}
JUDGE = {1: "1) ...\n2) ...\n['YES']", 2: "```\n['YES', 'NO']\n```", 3: "['YES', 'YES', 'YES']", 4: "I am unsure",
         5: "Final:\n['YES', 'PARTIAL', 'YES', 'YES', 'NO']"}


def fb(categories="content,example", policy="zero", votes=1) -> FollowBenchEvaluator:
    return FollowBenchEvaluator({"categories": categories, "invalid_policy": policy}, JudgeConfig(votes=votes))


def content_rows() -> list[dict]:
    return [{"prompt": f"content {e} L{k}", "response": XSUM[k] if e == 2 else f"answer L{k}"}
            for e in (1, 2) for k in range(1, 6)]


def test_followbench_api_output_folder_gives_the_hand_checked_metrics(fb_dir):
    ev = fb()
    data = ev.load(str(fb_dir))
    matched, responses = ev.match_outputs(data, str(API_OUTPUT))
    assert matched.source["responses"]["format"] == "api-output"
    assert set(matched.source["responses"]["files"]) == {"content", "example"}
    assert matched.source["coverage"]["per_category"] == {"content": {"scored": 10, "total": 10},
                                                         "example": {"scored": 5, "total": 5}}
    metrics = ev.score(matched, responses, [[JUDGE[k]] for k in range(1, 6)]).metrics
    assert [metrics[f"ssr_lv{k}"] for k in range(1, 6)] == pytest.approx([1.0, 0.875, 0.25, 0.75, 0.65])
    assert metrics["csl"] == 1.75 and metrics["partial"] is False


def test_followbench_api_output_single_file_and_category_check(fb_dir):
    ev = fb("content")
    data = ev.load(str(fb_dir))
    matched, responses = ev.match_outputs(data, str(API_OUTPUT / "content_constraint.jsonl"))
    assert len(responses) == 10 and matched.source["responses"]["format"] == "api-output"
    other = API_OUTPUT / "example_constraint.jsonl"
    assert error_of(ev.match_outputs, data, str(other)) == \
        f"{other}: answers the example category, but this run scores content (followbench.categories)"


def test_followbench_partial_folder(fb_dir, tmp_path):
    folder = tmp_path / "api"
    folder.mkdir()
    shutil.copy(API_OUTPUT / "content_constraint.jsonl", folder)
    ev = fb()
    data = ev.load(str(fb_dir))
    assert error_of(ev.match_outputs, data, str(folder)) == (
        f"{folder}: answers 10 of the 15 FollowBench instructions loaded (first missing: example example 1 level 1);"
        " score them anyway with --allow-partial")
    matched, responses = ev.match_outputs(data, str(folder), allow_partial=True)
    assert matched.source["coverage"]["per_category"]["example"] == {"scored": 0, "total": 5}
    metrics = ev.score(matched, responses, [[JUDGE[k]] for k in range(1, 6)]).metrics
    assert metrics["partial"] is True and set(metrics["per_category"]) == {"content"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert error_of(ev.match_outputs, data, str(empty)) == (
        f"{empty}: a folder without content_constraint.jsonl, example_constraint.jsonl (the official "
        "api_output/<model>/ layout)")


@pytest.mark.parametrize("row,message", [
    ({"prompt": "content 1 L1", "response": "again"}, "field 'prompt': a second response for this instruction "
                                                      "(first at line 1)"),
    ({"prompt": ["content 1 L2"], "response": "a"}, "field 'prompt': expected str, got list"),
    ({"prompt": "content 1 L2", "response": None}, "field 'response': expected str, got NoneType"),
    ({"prompt": "content 9 L1", "response": "a"}, "field 'prompt': instruction not found in FollowBench: "
                                                  "'content 9 L1'"),
])
def test_followbench_bad_jsonl_lines(fb_dir, tmp_path, row, message):
    ev = fb("content")
    data = ev.load(str(fb_dir))
    path = write_lines(tmp_path / "r.jsonl", {"prompt": "content 1 L1", "response": "a"}, row)
    assert error_of(ev.match_outputs, data, str(path)) == f"{path}:2: {message}"


@pytest.mark.parametrize("row,message", [
    ({"prompt": "content 1 L2", "choices": []}, "field 'choices[0]': missing"),
    ({"prompt": "content 1 L2", "choices": [{"message": {"content": ["x"]}}]},
     "field 'choices[0].message.content': expected str, got list"),
    ({"prompt": "content 1 L2", "choices": [{"text": "x"}]}, "field 'choices[0].message': missing"),
    ({"choices": [{"message": {"content": "x"}}]},
     "field 'prompt': missing (api_output lines hold the instruction in `prompt` or `prompt_new`)"),
])
def test_followbench_bad_api_output_lines(fb_dir, tmp_path, row, message):
    ev = fb("content")
    data = ev.load(str(fb_dir))
    path = write_lines(tmp_path / "content_constraint.jsonl",
                       {"prompt": "content 1 L1", "choices": [{"message": {"content": "a"}}]}, row)
    assert error_of(ev.match_outputs, data, str(path)) == f"{path}:2: {message}"


def test_followbench_skip_invalid_and_limit(fb_dir, tmp_path):
    ev = fb("content")
    data = ev.load(str(fb_dir), limit=5)  # the first example group of content only
    rows = content_rows()
    path = write_lines(tmp_path / "r.jsonl", *rows[:5], rows[0], {"prompt": "nope", "response": "x"},
                       {"prompt": 3, "response": "x"}, *rows[5:], {"prompt": "example 1 L1", "response": "x"})
    with pytest.raises(DataError):
        ev.match_outputs(data, str(path))
    matched, responses = ev.match_outputs(data, str(path), skip_invalid=True)
    assert len(responses) == 5
    assert matched.source["excluded"] == {"duplicate": 1, "unknown_item": 1, "bad_field": 1}
    assert matched.source["coverage"]["outside_selection"] == 6  # content group 2 (limit) and the example line
    metrics = ev.score(matched, responses, [[JUDGE[k]] for k in range(1, 6)]).metrics
    assert metrics["excluded"] == {"duplicate": 1, "unknown_item": 1, "bad_field": 1}
    assert metrics["counts"]["excluded_lines"] == 3


def test_followbench_unrecognised_format(fb_dir, tmp_path):
    ev = fb("content")
    data = ev.load(str(fb_dir))
    path = write_lines(tmp_path / "r.jsonl", {"instruction": "content 1 L1", "output": "a"})
    message = error_of(ev.match_outputs, data, str(path))
    assert message.startswith(f"{path}:1: not a FollowBench outputs format (fields: instruction, output); "
                              "--format accepts: jsonl (")
    assert "api-output (the official api_output/<model>/<category>_constraint.jsonl" in message
    assert error_of(ev.match_outputs, data, str(API_OUTPUT), fmt="jsonl") == \
        f"{API_OUTPUT}: a folder; --format jsonl reads one file"


# -- C. FollowBench judge outputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,level,expected", [
    ("[['YES'], 'NO']", 2, None),  # official: 'Invalid element in the list.'
    ("[{'YES'}, 'NO']", 2, None),  # unhashable element: invalid, never a TypeError
    ("[{'a': 1}, 'YES']", 2, None),
    ("{'a': 1}", 2, None),  # no list on the line
    ("{'a': 1}", 1, None),  # level 1: neither YES nor NO in the line
    ("[[...]]", 1, None),
    ("[[...]]", 2, None),
    ("[['YES', 'NO']]", 2, None),  # one element, not two
    ("[['YES'], 'NO']", 1, (1, 1.0)),  # level 1 is the official substring test: 'YES' is in the line
    ("[" * 500 + "]" * 500, 3, None),  # too deep for the parser: invalid, not a crash
    (None, 2, None),
    ("['YES', 'NO', 'N/A']", 3, (0, 1 / 3)),
])
def test_odd_judgments_are_invalid_not_crashes(text, level, expected):
    assert parse_judgment(text, level) == expected


def test_nested_list_judgment_is_counted_invalid(fb_dir):
    ev = fb("content")
    data = ev.load(str(fb_dir))
    responses = [XSUM[it.level] if it.source == "xsum" else "x" for it in data.items]
    judgments = [["['YES']"], ["[['YES'], 'NO']"], ["{'a': 1}"], ["[[...]]"], ["['YES'] * 5"]]
    result = ev.score(data, responses, judgments)
    assert result.metrics["counts"]["invalid_judgments"] == 4
    assert [s["judgment_valid"] for s in result.samples if s["method"] == "llm"] == [True, False, False, False, False]


def llm_dir(tmp_path: Path, groups: int = 2) -> Path:
    """A style category of LLM-judged groups only (source oasst): example ids 1..groups, levels 0-5."""
    rows = [{"example_id": e, "category": "style", "source": "oasst", "level": k, "instruction": f"style {e} L{k}",
             "target": ""} for e in range(1, groups + 1) for k in range(6)]
    (tmp_path / "style_constraints.json").write_text(json.dumps(rows))
    return tmp_path


def ok(level: int, yes: int | None = None) -> str:
    yes = level if yes is None else yes
    return str(["YES"] * yes + ["NO"] * (level - yes))


@pytest.mark.parametrize("policy", ["zero", "exclude"])
def test_all_invalid_level_is_none_with_its_count(tmp_path, policy):
    ev = fb("style", policy)
    data = ev.load(str(llm_dir(tmp_path)))
    judgments = [[ok(k) if k != 3 else "no list here"] for e in (1, 2) for k in range(1, 6)]
    metrics = ev.score(data, ["r"] * 10, judgments).metrics
    style = metrics["per_category"]["style"]
    assert style["hsr"]["3"] is None and style["ssr"]["3"] is None and style["invalid_per_level"][3] == 2
    assert style["hsr"]["2"] == 1.0 and metrics["hsr_lv3"] is None and metrics["ssr_lv3"] is None
    assert metrics["ssr_avg"] == 1.0  # the mean over the levels that have a score
    assert style["csl"] == (2.0 if policy == "zero" else None)  # zero: stops at level 3; exclude: no group left
    rows = dict(ev.summary_rows(metrics))
    assert rows["ssr_lv3"] is None and rows["csl (levels)"] == style["csl"]


def test_all_invalid_category_has_no_csl_under_zero(tmp_path):
    ev = fb("style", "zero")
    data = ev.load(str(llm_dir(tmp_path, groups=1)))
    metrics = ev.score(data, ["r"] * 5, [["?"]] * 5).metrics
    assert metrics["csl"] is None and metrics["per_category"]["style"]["csl"] is None
    assert all(metrics[f"hsr_lv{k}"] is None for k in range(1, 6)) and metrics["counts"]["invalid_judgments"] == 5


def test_exclude_policy_applies_to_csl(tmp_path):
    data_dir = llm_dir(tmp_path)
    judgments = [[ok(1)], [ok(2)], ["garbage"], [ok(4)], [ok(5)],  # group 1: invalid at level 3
                 [ok(1)], [ok(2)], [ok(3)], [ok(4, 3)], [ok(5)]]  # group 2: CSL 3
    zero = fb("style", "zero")
    metrics = zero.score(zero.load(str(data_dir)), ["r"] * 10, judgments).metrics
    assert metrics["per_category"]["style"]["csl"] == 2.5 and metrics["per_category"]["style"]["csl_groups"] == 2
    assert metrics["hsr_lv3"] == 0.5
    exclude = fb("style", "exclude")
    metrics = exclude.score(exclude.load(str(data_dir)), ["r"] * 10, judgments).metrics
    assert metrics["per_category"]["style"]["csl"] == 3.0 and metrics["per_category"]["style"]["csl_groups"] == 1
    assert metrics["hsr_lv3"] == 1.0 and metrics["per_category"]["style"]["items_per_level"][3] == 1


def test_votes_majority_per_constraint():
    verdicts, tally = vote_constraints(["['YES', 'NO']", "['YES', 'YES']", "['NO', 'NO']"], 2)
    assert verdicts == [True, False] and tally == {"n": 3, "valid": 3, "invalid": 0, "yes": [2, 1]}
    verdicts, tally = vote_constraints(["['YES', 'YES']", "['NO', 'NO']", "no verdict"], 2)  # tie: not satisfied
    assert verdicts == [False, False] and tally["invalid"] == 1 and tally["yes"] == [1, 1]
    verdicts, tally = vote_constraints(["['YES', 'YES']", "['NO']", "[['YES'], 'YES']"], 2)  # invalid ones excluded
    assert verdicts == [True, True] and tally["valid"] == 1
    assert vote_constraints(["?", "['YES']", "[]"], 2) == (None, {"n": 3, "valid": 0, "invalid": 3, "yes": [0, 0]})
    assert parse_constraints("YES", 1) == [True] and vote_constraints([], 1)[0] is None


def test_votes_in_score_and_requests(tmp_path):
    ev = fb("style", votes=3)
    data = ev.load(str(llm_dir(tmp_path, groups=1)))
    requests = ev.judge_requests(data, ["r"] * 5)
    assert [r.n for r in requests] == [3] * 5
    judgments = [["['YES']", "['NO']", "['YES']"],  # L1: YES 2 of 3
                 ["['YES', 'NO']", "['YES', 'YES']", "['NO', 'NO']"],  # L2: [YES, NO]
                 ["?", "?", "?"],  # L3: all invalid
                 [ok(4), ok(4), "?"],  # L4: 2 valid, both YES
                 [ok(5, 4), ok(5), ok(5, 0)]]  # L5: per constraint 2,2,2,2,1 of 3 -> 4 of 5
    result = ev.score(data, ["r"] * 5, judgments)
    samples = result.samples
    assert [(s["hard"], s["soft"]) for s in samples] == [(1, 1.0), (0, 0.5), (0, 0.0), (1, 1.0), (0, 0.8)]
    assert samples[1]["judgments"] == judgments[1] and samples[1]["votes"]["yes"] == [2, 1]
    assert samples[2]["judgment_valid"] is False and samples[2]["votes"]["invalid"] == 3
    assert result.metrics["counts"]["invalid_judgments"] == 1
    described = ev.describe()
    assert described["judge_votes"] == 3 and "more than half of the valid judgments" in described["vote_rule"]


def test_summary_rows_and_detail_table(fb_dir):
    ev = fb()
    data = ev.load(str(fb_dir))
    responses = [XSUM[it.level] if it.source == "xsum" else "x" for it in data.items]
    metrics = ev.score(data, responses, [[JUDGE[k]] for k in range(1, 6)]).metrics
    rows = ev.summary_rows(metrics)
    assert [name for name, _ in rows] == ["ssr_lv1", "ssr_lv2", "ssr_lv3", "ssr_lv4", "ssr_lv5", "ssr_avg", "hsr_avg",
                                          "csl (levels)"]
    assert rows[-1][1] == metrics["csl"]
    (title, columns, table), = ev.detail_tables(metrics)
    assert columns[0] == "category" and columns[-2:] == ["csl (levels)", "invalid_judgments"] and len(columns) == 13
    assert [r[0] for r in table] == ["content", "example", "overall"]
    content = table[0]
    assert content[1:6] == [1.0, 0.5, 0.5, 0.5, 0.0] and content[-2:] == [1.5, 1]
    assert table[-1][-1] == 1


def test_ifeval_summary_and_detail(ifeval):
    ev, data = ifeval
    metrics = ev.score(data, ["Tea is calm.", "the cat naps.", "An apple and a pear."]).metrics
    assert [n for n, _ in ev.summary_rows(metrics)] == ["prompt_level_strict_acc", "inst_level_strict_acc",
                                                        "prompt_level_loose_acc", "inst_level_loose_acc", "average"]
    (title, columns, rows), = ev.detail_tables(metrics)
    assert [r[0] for r in rows] == ["change_case", "keywords", "punctuation"] and rows[2][1] == 2
