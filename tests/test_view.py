"""`spar view`: one self-contained HTML report of an experiment (overview, tables, figures, sample browser,
refinement trees with their DPO pairs), checked as text (no network references, model text escaped, size guard,
one-line errors) and rendered in headless Chromium (every section, a tree node, working filters, no console error,
no request leaving the file).

The experiment is built quickly and realistically: its evaluation runs are real `spar eval` runs (fake backend
answering with HTML-looking text) on small synthetic IFEval (built-in), FollowBench and LLMBar data; its
iteration 1 holds real tree searches (`training.tree_search` on the scripted self-play backend) and the DPO pairs
`training.build_data.dpo_pairs` makes from them.

`python tests/test_view.py docs/view.png` rewrites the README's screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from report_fixtures import GOOD, make_llmbar_dir, spar

CHROMIUM = Path("/usr/bin/chromium")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None  # the figures need it; without it, a note
EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)> & </pre></details>'
FOLLOWBENCH_JUDGE = re.compile(r"obtain the final instruction with (\d+) additional constraint")


def _h(*parts) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def reply(request, j: int) -> str:
    """The fake model of the eval runs (`--set model.script=test_view:reply`): the SPaR judge's format for judge
    prompts, FollowBench's constraint list for its judge, good IFEval answers half the time, else HTML-looking
    text that the report must escape."""
    from harness.core.backends.fake import JUDGE_PREFIX

    last = request.messages[-1].content
    h = _h(last, request.seed, j)
    if last.startswith(JUDGE_PREFIX):
        if h % 9 == 0:
            return "Step-by-step verification: <unsure/>"
        return (f"Step-by-step verification: the <b>output</b> checked {h % 100}.\nFinal Judgement (if the Output "
                f"accurately follows the Prompt): {'Yes' if h % 2 else 'No'}")
    found = FOLLOWBENCH_JUDGE.search(last)
    if found:
        n = int(found.group(1))
        return "[" + ", ".join("'YES'" if _h(h, k) % 3 else "'NO'" for k in range(n)) + "]"
    for key, good in GOOD.items():
        if h % 2 and good and last.strip() and _prompt_of(key) == last:
            return good
    return f"{EVIL} answer {h % 1000}"


_PROMPTS: dict[int, str] = {}


def _prompt_of(key: int) -> str:
    if not _PROMPTS:
        from evaluators.ifeval import QUICKSTART_FILE

        for line in QUICKSTART_FILE.read_text().splitlines():
            row = json.loads(line)
            _PROMPTS[row["key"]] = row["prompt"]
    return _PROMPTS.get(key, "")


def _followbench_dir(root: Path) -> Path:
    """Two LLM-judged categories, two example groups each (levels 0-5); instructions with HTML-looking text."""
    root.mkdir(parents=True, exist_ok=True)
    for category, source in (("content", "oasst"), ("style", "oasst")):
        rows = [{"example_id": ex, "category": category, "source": source, "level": k, "target": "",
                 "instruction": f"<{category}> task {ex}: write about <i>rivers</i> with {k} added constraints"}
                for ex in (1, 2) for k in range(6)]
        (root / f"{category}_constraints.json").write_text(json.dumps(rows))
    return root


def _eval(folder: Path, benchmarks: str, data: str, cache: Path) -> None:
    assert spar("eval", "--backend", "fake", "--model", "view-test-model", "--set", "model.script=test_view:reply",
                "--benchmarks", benchmarks, "--data", data, "--limit", "8", "--output", folder, "--cache", cache,
                "--bench", "followbench.categories=content,style") == 0


#: self-play roots and what the scripted refiner makes of them: stages of better and better responses (a
#: refinement moves a response one stage up); the judge says Yes more often the higher the stage. The last root never
#: improves, so its search fails.
LADDERS = [
    ("Write a haiku about autumn rain, all in lowercase letters and without any commas.",
     [["Autumn Rain, Soft and Slow,\nLeaves drift down, the gutters flow,\nGrey skies hum below."],
      ["autumn rain, soft and slow,\nleaves drift down, the gutters flow,\ngrey skies hum below.",
       "Autumn rain soft and slow\nLeaves drift down the gutters flow\nGrey skies hum below"],
      ["autumn rain soft and slow\nleaves drift down the gutters flow\ngrey skies hum below"]],
     "The output capitalises words and uses commas; the prompt asks for lowercase and no commas."),
    ("List three benefits of cycling to work as a JSON array of strings, with no other text.",
     [["Sure! Here are three benefits:\n1. Exercise\n2. Saves money\n3. Less traffic"],
      ['Here you go: ["exercise", "saves money", "less traffic"]'],
      ['["daily exercise", "lower commuting costs", "less traffic and pollution"]',
       '["exercise", "saves money", "less traffic"]']],
     "The output is a numbered list with an introduction, not a bare JSON array."),
    ("Reply with a one-line HTML snippet that shows the word hello in bold, inside a markdown code block.",
     [[EVIL], ["```html\n<b>hello</b> <script>alert(1)</script>\n```"], ["```html\n<b>hello</b>\n```"]],
     "The output runs a <script> and is not inside a code block."),
    ("Explain photosynthesis to a 10-year-old in exactly two sentences, and end with a question.",
     [["Photosynthesis is the process by which plants convert light energy into chemical energy stored in glucose, "
       "using carbon dioxide and water while releasing oxygen."],
      ["Plants use sunlight to turn air and water into their food. Isn't it amazing that leaves are tiny kitchens."],
      ["Plants use sunlight to turn air and water into sugar, which is their food. Isn't it cool that every leaf is "
       "a tiny kitchen?"]],
     "One long technical sentence; the prompt asks for two simple sentences ending with a question."),
    ("Give a title for a blog post about sourdough, in title case and under six words.",
     [["the ultimate beginner's complete guide to baking sourdough bread at home"]],
     "The title has eleven words and is not in title case."),
]
P_YES = (0.05, 0.45, 0.9)


def _quoted(text: str) -> str:
    return text.split("Output: \u201c", 1)[1].rsplit("\u201d", 1)[0] if "Output: \u201c" in text else text


def _stage(text: str) -> tuple[int, int] | None:
    for k, (_, stages, _) in enumerate(LADDERS):
        for s, texts in enumerate(stages):
            if text.strip() in (t.strip() for t in texts):
                return k, s
    return None


def refiner_reply(request, j: int) -> str:
    """The scripted refiner and judge of the tree searches (see LADDERS)."""
    from harness.core.backends.fake import JUDGE_PREFIX, REFINE_MARK

    msgs = request.messages
    h = _h("/".join(m.content for m in msgs), request.seed, j)
    if msgs[-1].content.startswith(REFINE_MARK):
        where = _stage(_quoted(msgs[0].content))
        if where is None or h % 17 == 0:
            return "I would refine the output, but I forgot the markers."
        stages = LADDERS[where[0]][1]
        up = stages[min(where[1] + 1, len(stages) - 1)]
        return (f"Reflection on how to refine the Output: fix what the judgement points out.\n"
                f"Final Refined Output: [[start]] {up[h % len(up)]} [[end]]")
    if msgs[-1].content.startswith(JUDGE_PREFIX):
        where = _stage(_quoted(msgs[-1].content))
        stage = where[1] if where else 0
        yes = (h % 1000) / 1000 < P_YES[stage]
        why = "every constraint of the prompt is met" if yes else \
            (LADDERS[where[0]][2] if where and stage == 0 else "the output is closer, but one constraint still fails")
        return (f"Step-by-step verification: {why}.\nFinal Judgement (if the Output accurately follows the Prompt): "
                f"{'Yes' if yes else 'No'}")
    return reply(request, j)


def _searches(t: int) -> tuple[list[dict], list[dict]]:
    """Real refinement trees (`training.tree_search`, scripted refiner) and the DPO pairs made from them."""
    from harness.core.backends.fake import FakeBackend
    from training.build_data import dpo_pairs
    from training.tree_search import Root, SearchConfig, run_batched, search

    roots = [Root(f"prompt-{k}#0", prompt, stages[0][0], f"Step-by-step verification: {why}\nFinal Judgement: No")
             for k, (prompt, stages, why) in enumerate(LADDERS)]
    cfg = SearchConfig(votes=3, budget=8, max_depth=2, seed=t)
    backend = FakeBackend(reply=refiner_reply)
    results = run_batched([search(r, cfg) for r in roots], lambda reqs: backend.generate(reqs))
    pairs = dpo_pairs(results, {r.key: r.response for r in roots})
    return [r.to_dict() for r in results], pairs


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build_experiment(root: Path) -> Path:
    """An experiment folder as `spar run` leaves it: config.json, iter_0 (evaluations only) and iter_1 (searches,
    DPO pairs, evaluations), each with its record."""
    work = root / "work"
    llmbar = make_llmbar_dir(work / "llmbar", pairs=4)
    followbench = _followbench_dir(work / "followbench")
    exp = root / "spar-view-test"
    config = {"experiment": "spar-view-test", "method": "spar", "ablation": "",
              "models": {"actor": {"name": "view-test-model"}, "refiner": {"name": "view-test-model"}},
              "search": {"algorithm": "bfs", "end_gate": 0.5, "votes": 3, "budget": 8, "max_depth": 2}}
    exp.mkdir(parents=True)
    (exp / "config.json").write_text(json.dumps(config))
    for t in (0, 1):
        it = exp / f"iter_{t}"
        cache = work / f"cache{t}.sqlite"
        _eval(it / "eval" / "actor", "ifeval,followbench", f"ifeval=quickstart,followbench={followbench}", cache)
        _eval(it / "eval" / "refiner", "llmbar", f"llmbar={llmbar}", cache)
        stages: dict = {"eval_actor": {"benchmarks": ["ifeval", "followbench"]},
                        "eval_refiner": {"benchmarks": ["llmbar"]}}
        if t:
            trees, pairs = _searches(t)
            _write_jsonl(it / "searches.jsonl", trees)
            _write_jsonl(it / "data" / "dpo.jsonl", pairs)
            passed = sum(tr["passed"] for tr in trees)
            stages.update(collect={"negatives": len(trees)}, search={"searches": len(trees), "passed": passed,
                                                                     "failed": len(trees) - passed},
                          data={"dpo_pairs": len(pairs)}, train_actor={"train_loss": 0.61})
        record = {"command": "run", "schema_version": 1, "status": "finished", "experiment": "spar-view-test",
                  "iteration": t, "config": config, "models": {"actor_out": str(it / "actor")}, "stages": stages,
                  "extra": {"method": "spar"}}
        (it / "record.json").write_text(json.dumps(record))
    return exp


def view(*args) -> int:
    """`spar view ...` through the `spar` CLI."""
    from harness.commands import main

    return main([str(a) for a in ("view", *args)])


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    return build_experiment(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def report(experiment, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "view.html"
    assert view(experiment, "--output", out, "--resamples", "200", "--max-samples", "6") == 0
    return out


# ------------------------------------------------------------------------------------------------- as text
SECTION_IDS = ("overview", "tables", "plots", "samples", "trees")


def test_report_has_every_section_and_no_network_reference(report):
    text = report.read_text(encoding="utf-8")
    for sid in SECTION_IDS:
        assert f'<section id="{sid}"' in text
    # nothing is loaded from elsewhere: no external scripts, styles, images, fonts or frames
    assert not re.search(r"""(?:src|href|action|poster|srcset|data)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", text, re.I)
    assert "@import" not in text and "<link" not in text and "<iframe" not in text
    assert re.findall(r"<script\b[^>]*>", text) == ["<script>"]  # the report's own inline script, nothing else
    if HAS_MATPLOTLIB:
        assert 'src="data:image/png;base64,' in text  # the figures, embedded
    else:
        assert "plots need matplotlib" in text
    # the model's HTML-looking text is shown as text
    assert "<script>alert(" not in text and "onerror=alert" not in text.replace("&lt;img src=x onerror=alert", "")
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in text
    assert "&lt;content&gt; task 1: write about &lt;i&gt;rivers&lt;/i&gt;" in text  # FollowBench instruction


def test_report_explains_each_dpo_pair(report, experiment):
    text = report.read_text(encoding="utf-8")
    trees = [json.loads(line) for line in (experiment / "iter_1" / "searches.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (experiment / "iter_1" / "data" / "dpo.jsonl").read_text().splitlines()]
    assert pairs and any(not t["passed"] for t in trees)  # the scripted refiner makes both outcomes
    assert text.count("DPO chosen</span>") == len(pairs) and text.count("DPO rejected</span>") == len(pairs)
    assert text.count('class="node ') == sum(len(t["nodes"]) for t in trees)
    failed = sum(not t["passed"] for t in trees)
    assert text.count("No DPO pair: the search did not pass") == failed
    for tree in trees:  # every node's response is there, escaped
        for node in tree["nodes"]:
            body = node["response"][:200].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
                .replace('"', "&quot;").replace("'", "&#x27;")
            assert body in text


def test_sample_browser_facets_and_size_guard(report, experiment):
    text = report.read_text(encoding="utf-8")
    # the benchmark's own filters
    for label in ("failed instruction (strict)", "category", "level", "subset", "wrong judgment", "verdict"):
        assert f">{label} <select" in text
    assert 'value="level 3"' in text and 'value="Neighbor"' in text
    # --max-samples 6: each (run, benchmark) says what it left out and how to see it all
    for bench, role in (("ifeval", "actor"), ("followbench", "actor"), ("llmbar", "refiner")):
        rows = len((experiment / "iter_0" / "eval" / role / bench / "samples.jsonl").read_text().splitlines())
        assert rows > 6 and f"{rows - 6} more of {rows} samples not shown" in text and f"--max-samples {rows}" in text


def test_cap_and_chars_flags(experiment, tmp_path):
    out = tmp_path / "small.html"
    assert view(experiment / "iter_1", "--output", out, "--max-samples", "1", "--max-trees", "2", "--max-chars",
                "100", "--no-tables", "--no-plots") == 0
    text = out.read_text(encoding="utf-8")
    assert "3 more of 5 trees not shown" in text and "--max-trees 5" in text
    assert "more characters not shown (--max-chars)" in text
    assert "tables and figures turned off (--no-tables --no-plots)" in text and "figures turned off" in text
    items = re.findall(r'<details class="item st-\w+" id="r\d+-b\d+-s(\d+)"', text)
    assert items and set(items) == {"0"}


def test_view_of_a_single_run_and_errors(experiment, tmp_path, capsys):
    run = experiment / "iter_0" / "eval" / "refiner"
    assert view(run, "--no-plots", "--resamples", "100") == 0
    text = (run / "view.html").read_text(encoding="utf-8")
    assert "no self-play iterations" in text and 'id="trees"' in text
    capsys.readouterr()
    assert view(tmp_path / "missing") == 2
    assert capsys.readouterr().err.strip() == f"spar: error: {tmp_path / 'missing'}: no such folder"
    assert view(run, "--output", tmp_path) == 2
    assert "give an .html file name" in capsys.readouterr().err
    assert view(run, "--max-samples", "0") == 2
    assert "--max-samples must be at least 1" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert view(tmp_path / "empty") == 2
    assert "not a run or experiment folder" in capsys.readouterr().err


def test_experiment_still_without_evaluations(experiment, tmp_path):
    """Mid-run: searches and pairs written, no evaluation yet; the trees are shown, the rest says why it is empty."""
    exp = tmp_path / "early"
    (exp / "iter_1" / "data").mkdir(parents=True)
    for name in ("record.json", "searches.jsonl", "data/dpo.jsonl"):
        (exp / "iter_1" / name).write_text((experiment / "iter_1" / name).read_text())
    assert view(exp, "--output", tmp_path / "early.html") == 0
    text = (tmp_path / "early.html").read_text(encoding="utf-8")
    assert "no finished evaluations in this experiment" in text and "no runs to tabulate" in text
    assert text.count("DPO chosen</span>") == len((exp / "iter_1" / "data" / "dpo.jsonl").read_text().splitlines())


def test_cards_per_benchmark():
    from evaluators.views import FAIL, INVALID, PASS, view_for

    card = view_for("ifeval").card({"key": 7, "prompt": "p", "response": "r",
                                    "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
                                    "follow_instruction_list_strict": [True, False],
                                    "follow_instruction_list_loose": [True, True],
                                    "follow_all_instructions_strict": False})
    assert card.status == FAIL and card.facets["failed"] == ["length_constraints:number_words"]
    assert card.facets["group"] == ["length_constraints"] and [c.ok for c in card.checks] == [True, False]
    card = view_for("followbench").card({"category": "style", "example_id": 3, "level": 4, "method": "llm",
                                         "instruction": "i", "response": "r", "judgments": ["x"],
                                         "constraints": None, "judgment_valid": False, "hard": 0, "soft": 0.0})
    assert card.status == INVALID and card.facets["level"] == ["level 4"] and card.facets["category"] == ["style"]
    lb = view_for("llmbar")
    card = lb.card({"subset": "GPTOut", "index": 2, "label": 1, "judgments": [["a"], ["b"]],
                    "votes": [{"yes": 3, "no": 0, "invalid": 0}, {"yes": 2, "no": 1, "invalid": 0}],
                    "predicted": [1, 1], "truth": [1, 0]})
    assert card.status == FAIL and card.facets == {"subset": ["GPTOut"], "verdict": ["wrong"], "wrong": ["output 2"]}
    card = lb.card({"subset": "Natural", "index": 0, "label": 2, "choice_original": 2, "choice_swapped": 2})
    assert card.status == PASS and card.facets["wrong"] == ["(none)"]
    generic = view_for("lm-eval:gsm8k").card({"doc_id": 4, "prompt": "q", "exact_match": 0.0})
    assert generic.status == FAIL and generic.title == "doc_id 4"


# ------------------------------------------------------------------------------------------------- templates
def test_report_is_rendered_from_the_package_templates(experiment, tmp_path, monkeypatch):
    """The HTML comes from the Jinja2 templates shipped as package data (autoescape on, strict undefined names):
    the template's marker is in the output, the CSS and JS files are inlined, and another template folder gives
    another document."""
    import importlib
    import shutil
    from importlib.resources import files

    import jinja2

    from harness.reports.view import ViewOptions, build_html

    render = importlib.import_module("harness.reports.view.render")

    folder = files("harness.reports.view") / "templates"
    for name in ("report.html.j2", "report.css", "report.js"):
        assert (folder / name).is_file(), name
    assert 'harness = ["reports/view/templates/*"]' in (Path(__file__).parent.parent / "pyproject.toml").read_text()
    env = render.environment()
    assert env.autoescape is True and env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError):
        env.get_template(render.REPORT).render()
    paths, opts = [experiment / "iter_1"], ViewOptions(tables=False, plots=False)
    text, _ = build_html(paths, opts)
    assert "<!-- written by spar view from the template harness/reports/view/templates/report.html.j2 -->" in text
    css = (folder / "report.css").read_text(encoding="utf-8")
    js = (folder / "report.js").read_text(encoding="utf-8")
    assert f"<style>\n{css}</style>" in text and f"<script>\n{js}</script>" in text
    # the same data through a changed copy of the templates
    other = tmp_path / "templates"
    shutil.copytree(render.TEMPLATE_DIR, other)
    (other / "report.css").write_text(css + ".spar-test-css{color:red}\n", encoding="utf-8")
    (other / "_macros.html.j2").write_text((other / "_macros.html.j2").read_text(encoding="utf-8").replace(
        '<pre class="{{ cls }}">', '<pre data-test="changed" class="{{ cls }}">'), encoding="utf-8")
    monkeypatch.setattr(render, "TEMPLATE_DIR", other)
    changed, _ = build_html(paths, opts)
    assert ".spar-test-css{color:red}" in changed and '<pre data-test="changed" class="' in changed
    assert ".spar-test-css" not in text and 'data-test="changed"' not in text


def test_untrusted_text_is_escaped_in_every_field(tmp_path):
    """HTML in a search's key, prompt, responses, critique and DPO pair comes out as text: the report's own inline
    script is the only script, quotes are escaped, and nothing closes the report's elements early."""
    from harness.reports.view import build_html

    evil = '"><script>alert(1)</script></pre></details><b onmouseover=\'x\'>'
    it = tmp_path / "exp" / "iter_1"
    nodes = [{"id": 0, "parent": None, "depth": 0, "value": 0.0, "response": "root " + evil, "critique": evil},
             {"id": 1, "parent": 0, "depth": 1, "value": 1.0, "yes": 3, "response": "child " + evil,
              "critique": evil, "refine_cot": evil}]
    _write_jsonl(it / "searches.jsonl", [{"key": "k" + evil, "prompt": "p" + evil, "passed": True, "final": 1,
                                          "nodes": nodes}])
    _write_jsonl(it / "data" / "dpo.jsonl", [{"key": "k" + evil, "prompt": [{"role": "user", "content": "p" + evil}],
                                              "chosen": [{"role": "assistant", "content": "child " + evil}],
                                              "rejected": [{"role": "assistant", "content": "root " + evil}]}])
    text, summary = build_html([it])
    assert summary.trees_shown == 1 and text.count("DPO chosen</span>") == 1
    assert re.findall(r"<script\b[^>]*>", text) == ["<script>"]
    assert "<b onmouseover" not in text and "</pre></details><b" not in text
    escaped = ("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;/pre&gt;&lt;/details&gt;"
               "&lt;b onmouseover=&#x27;x&#x27;&gt;")
    assert text.count(escaped) >= 7  # key, prompt (+ snippet), 2 responses, 2 critiques, the refiner's reply


# ------------------------------------------------------------------------------------------------- in Chromium
class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3,
    replies and events on fd 4, NUL-separated JSON); no port, no extra package."""

    def __init__(self, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        # high copies, so that dup2 onto 3 and 4 in the child never clobbers one of them
        child_in, child_out = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 20), fcntl.fcntl(evt_w, fcntl.F_DUPFD, 20)
        os.close(cmd_r)
        os.close(evt_w)

        def to_3_and_4():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log = open(profile / "chromium.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, preexec_fn=to_3_and_4, close_fds=False)
        os.close(child_in)
        os.close(child_out)
        self.out = os.fdopen(cmd_w, "wb", buffering=0)
        self.inbox: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, args=(evt_r,), daemon=True).start()
        self.session = None

    def _read(self, fd: int) -> None:
        buf = b""
        with os.fdopen(fd, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    self.inbox.put(None)
                    return
                buf += chunk
                while b"\0" in buf:
                    msg, buf = buf.split(b"\0", 1)
                    self.inbox.put(json.loads(msg))

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        while True:
            reply_ = self._next()
            if reply_.get("id") == self.next_id:
                if "error" in reply_:
                    raise RuntimeError(f"{method}: {reply_['error']}")
                return reply_.get("result", {})

    def _next(self) -> dict:
        try:
            msg = self.inbox.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError("chromium did not answer in time") from None
        if msg is None:
            raise RuntimeError("chromium closed the DevTools pipe")
        if "method" in msg:
            self.events.append(msg)
        return msg

    def wait_event(self, method: str) -> dict:
        for ev in self.events:
            if ev["method"] == method:
                return ev
        while True:
            msg = self._next()
            if msg.get("method") == method:
                return msg

    def open(self, url: str, width: int = 1360, height: int = 1000) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and requests for anything but the file itself."""
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')} "
                           f"{p.get('exceptionDetails', {}).get('exception', {}).get('description', '')}")
            elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif ev["method"] == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:")):
                    out.append(f"request: {url}")
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.log.close()


def _chromium_or_skip() -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install -y chromium): the in-browser checks are skipped")


def test_report_renders_in_chromium(report, tmp_path):
    _chromium_or_skip()
    browser = Chromium(tmp_path)
    try:
        browser.open(report.resolve().as_uri())
        assert browser.js("document.documentElement.getAttribute('data-view-ready')") == "1"
        assert browser.js(f"{list(SECTION_IDS)}.filter(id => !document.getElementById(id))") == []
        assert browser.js("document.getElementById('view-errors').hidden") is True
        # every tree node is rendered (laid out once its blocks are open)
        browser.js("document.getElementById('open-all').click()")
        nodes = browser.js("Array.from(document.querySelectorAll('#trees .node')).length")
        assert nodes > 5
        assert browser.js("Array.from(document.querySelectorAll('#trees details.browser')).every(d => d.open)") is True
        assert browser.js("document.querySelectorAll('#plots img').length") >= int(HAS_MATPLOTLIB)
        assert browser.js("Array.from(document.querySelectorAll('#plots img')).every(i => i.naturalWidth > 0)")
        # the model's <script> text is text: no element from it, and no alert ran
        assert browser.js("document.querySelectorAll('main script, main img[src=x]').length") == 0
        # filters: the first IFEval-like browser (it has a `failed` facet): pick a failed instruction type
        state = browser.js("""(() => {
            const sel = document.querySelector('#samples select[data-facet="failed"]');
            const browser = sel.closest('details.browser');
            const before = browser.querySelectorAll('.items > details:not(.hidden)').length;
            sel.value = sel.options[1].value;
            sel.dispatchEvent(new Event('change'));
            const visible = Array.from(browser.querySelectorAll('.items > details:not(.hidden)'));
            const want = sel.value;
            return {before, after: visible.length, value: want,
                    all: visible.every(el => JSON.parse(el.dataset.facets).failed.includes(want)),
                    count: browser.querySelector('.count').textContent};
        })()""")
        assert 0 < state["after"] < state["before"] and state["all"], state
        assert state["count"] == f"showing {state['after']} of {state['before']}"
        # trees: only the searches that made no pair; then free text
        state = browser.js("""(() => {
            const sel = document.querySelector('#trees select[data-facet="pair"]');
            const block = sel.closest('details.browser');
            const opt = Array.from(sel.options).find(o => o.value === 'no pair: search failed');
            if (!opt) return {skip: true};
            sel.value = opt.value; sel.dispatchEvent(new Event('change'));
            const shown = Array.from(block.querySelectorAll('.items > details:not(.hidden)'));
            return {n: shown.length, chosen: shown.filter(el => el.querySelector('.node.chosen')).length};
        })()""")
        assert state.get("skip") or (state["n"] > 0 and state["chosen"] == 0), state
        state = browser.js("""(() => {
            const box = document.querySelector('#samples input.q');
            const browser = box.closest('details.browser');
            box.value = 'no such text anywhere 12345'; box.dispatchEvent(new Event('input'));
            return browser.querySelectorAll('.items > details:not(.hidden)').length;
        })()""")
        assert state == 0
        # a link to a node opens the blocks around it
        browser.js("document.getElementById('open-all').click()")  # close all again
        node_id = browser.js("document.querySelector('#trees .node.chosen, #trees .node').id")
        browser.js(f"location.hash = '#{node_id}'")
        time.sleep(0.2)
        assert browser.js(f"document.getElementById('{node_id}').closest('details.item').open") is True
        browser.screenshot(tmp_path / "view.png")
        assert (tmp_path / "view.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert browser.js("document.getElementById('view-errors').hidden") is True
        problems = browser.problems()
    finally:
        browser.close()
    assert not problems, problems


# ------------------------------------------------------------------------------------------------- screenshot
def make_screenshot(target: Path) -> None:
    """The README's picture: an experiment's report with a refinement tree and its DPO pair opened."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        exp = build_experiment(root / "exp")
        out = root / "view.html"
        assert view(exp, "--output", out, "--resamples", "200", "--max-samples", "30") == 0
        browser = Chromium(root, timeout=90)
        try:
            browser.open(out.as_uri(), width=1280, height=1400)
            browser.js("""(() => {
                document.querySelector('#overview > details').open = false;
                document.querySelector('#tables > details').open = false;
                document.querySelector('#plots > details').open = false;
                document.querySelector('#samples > details').open = false;
                const block = document.querySelector('#trees select[data-facet="pair"]').closest('details.browser');
                block.open = true;
                const trees = Array.from(block.querySelectorAll('details.item'));
                const tree = trees.find(el => el.querySelector('.node.chosen') && el.querySelector('.node.chosen')
                    .closest('ul ul'));
                (tree || block.querySelector('details.item')).open = true;
                window.scrollTo(0, 0);
            })()""")
            time.sleep(0.3)
            browser.screenshot(target)
            assert not browser.problems(), browser.problems()
        finally:
            browser.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("SPAR_CACHE_DIR", tempfile.mkdtemp(prefix="spar-cache-"))
    make_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/view.png"))
