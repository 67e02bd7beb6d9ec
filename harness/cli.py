"""The `spar` command line (front layer): parse flags and configs, run, print tables.

Every user mistake ends as one line `spar: error: ...` and exit code 2; Ctrl-C or SIGTERM as exit code 130 with
the run record marked "interrupted".
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from typing import Any, Sequence

from harness.errors import SparError
from harness.options import float_flag, int_flag

QUICKSTART_MAX_NEW_TOKENS = 256
#: generation flags that `spar score` accepts (scripts may pass them) but does not list: it generates no responses
SCORE_HIDDEN_FLAGS = ("model", "max-new-tokens", "temperature", "top-p", "system-prompt")
LOSS_NOTE = ("dpo_loss, rft_loss: the stage's mean training loss over all its steps (transformers' train_loss); "
             "the progress line's 'step loss' is the latest logged step's")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `spar: error:` line (exit 2) like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SparError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    from evaluators import REGISTRY
    from harness.config import SEARCH_FLAGS, add_flags

    DECODE_FLAGS = tuple(flag for flag, _ in SEARCH_FLAGS)

    parser = _Parser(prog="spar", description="SPaR evaluation harness")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ev = sub.add_parser("eval", help="generate with a model and score benchmarks")
    ev.add_argument("--config", help="YAML file of eval options (flags override it)")
    add_flags(ev)

    sc = sub.add_parser("score", help="score outputs produced elsewhere (an actor's responses or a judge's "
                                      "judgments, as the benchmark says)",
                        description="Score outputs produced elsewhere. Nothing is generated except by the judge of "
                                    "judged benchmarks (followbench, refinement: --judge ...); the model flags "
                                    "(--backend, --base-url, --batch-size, ...) set the judge's fields it does not "
                                    "set itself.")
    sc.add_argument("benchmark", help=f"benchmark name: {', '.join(REGISTRY)}")
    sc.add_argument("--outputs", help=argparse.SUPPRESS)  # the earlier name of --responses / --judgments
    sc.add_argument("--responses", help="an actor's responses: JSONL with `prompt` (or `key`) and `response` per "
                                        "line, or a format named by --format")
    sc.add_argument("--judgments", help="a judge's judgments (llmbar): JSONL with `subset`, `index`, `output` or "
                                        "`order`, and `judgment`/`judgments`/`verdict`, or --format")
    sc.add_argument("--format", dest="fmt", default=None,
                    help="the outputs' format (default: detected); `spar benchmarks` lists each benchmark's formats")
    sc.add_argument("--allow-partial", action="store_true",
                    help="score a file that covers only part of the benchmark (the headline then says partial)")
    sc.add_argument("--skip-invalid", action="store_true",
                    help="count and exclude bad lines instead of stopping at the first one")
    sc.add_argument("--config", help="YAML file of options (flags override it)")
    add_flags(sc, skip=("benchmarks", "limit", "refiner", *DECODE_FLAGS), hidden=SCORE_HIDDEN_FLAGS)

    qs = sub.add_parser("quickstart", help="offline demo: the embedded SmolLM2 on a built-in IFEval-format set")
    qs.add_argument("--output", default="", help="run folder (default results/runs/<time>-quickstart)")
    qs.add_argument("--data", default="", help="'quickstart' (built-in 26 prompts, the default), or a real "
                                               "IFEval file/folder/hub id")
    qs.add_argument("--limit", default=None, help="score only the first N prompts")
    qs.add_argument("--max-new-tokens", default=str(QUICKSTART_MAX_NEW_TOKENS), help="generation budget")

    rn = sub.add_parser("run", help="SPaR self-play iterations from a YAML experiment config (resumable)")
    rn.add_argument("config", help="experiment YAML (see configs/)")
    rn.add_argument("--output", default="", help="experiment folder (default: output_dir, else results/<experiment>)")
    rn.add_argument("--iterations", default=None, help="override the number of iterations")
    rn.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set search.algorithm=dfs (repeatable)")
    rn.add_argument("--dry-run", action="store_true",
                    help="validate the config end to end in seconds: every stage runs with fake generation, a tiny "
                         "random model for training and a few prompts, in a temporary folder (training/dry_run.py)")

    bm = sub.add_parser("benchmarks", help="list the registered benchmarks with their options and formats")
    bm.add_argument("name", nargs="?", help="one benchmark")

    pr = sub.add_parser("prompts", help="build self-play prompts")
    prs = pr.add_subparsers(dest="prompts_command", required=True, parser_class=_Parser)
    ev_p = prs.add_parser("evolve", help="taxonomy evolution of seed prompts (SPaR's prompt construction)")
    ev_p.add_argument("--seeds", required=True, help="seed prompts: JSON/JSONL rows with `prompt` (or a hub id)")
    ev_p.add_argument("--output", required=True, help="JSONL of evolved prompts (usable as `prompts:` in a config)")
    ev_p.add_argument("--limit", default=None, help="evolve only the first N seeds")
    ev_p.add_argument("--temperature", default="0.7", help="sampling temperature (official: 0.7)")
    ev_p.add_argument("--max-new-tokens", default="1024", help="generation budget")
    add_flags(ev_p, skip=("benchmarks", "limit", "data", "output", "temperature", "max-new-tokens", "top-p",
                          "system-prompt", "judge", "judge-backend", "judge-base-url", "judge-api-key-env",
                          "refiner", "judge-votes", "judge-temperature", "judge-max-new-tokens", "judge-parser",
                          *DECODE_FLAGS))
    _add_contamination(sub)
    _register_extra(sub)
    return parser


def _add_contamination(sub) -> None:
    from training.contamination import DEFAULT_BENCHMARKS, NORMALISATION

    ct = sub.add_parser("contamination", help="n-gram and exact overlap of training prompts with benchmark prompts")
    ct.add_argument("--prompts", required=True, help="training prompts: JSON/JSONL rows with prompt/instruction/input "
                                                     "(or prompt/messages chat turns), a hub id, or `builtin`")
    ct.add_argument("--benchmarks", default=DEFAULT_BENCHMARKS, help=f"default {DEFAULT_BENCHMARKS}")
    ct.add_argument("--data", default="", help="benchmark data sources, as spar eval --data (default: $SPAR_DATA_DIR, "
                                               "else the hub)")
    ct.add_argument("--responses", action="store_true", help="also compare the file's responses (response, output, "
                                                            "completion, chosen, rejected, assistant turns)")
    ct.add_argument("--n", default="13", help="n-gram length in words (default 13)")
    ct.add_argument("--short", default="contained", choices=("contained", "exact"),
                    help="a text shorter than n words: contained (default: overlaps when found whole inside the other "
                         "text, if it has at least --min-words words) or exact (only an exact match counts)")
    ct.add_argument("--min-words", default="8", help="short texts with fewer words count only on an exact match "
                                                     "(default 8, GPT-3's smallest n)")
    ct.add_argument("--output", default="", help="JSONL of the overlapping pairs (default results/contamination/"
                                                 "<prompts file name>.jsonl; the figures go beside it, .record.json)")
    ct.epilog = f"Normalisation: {NORMALISATION}."


def _contamination(args: argparse.Namespace, console) -> int:
    """`spar contamination`: per benchmark, the prompts the training texts overlap; every pair to --output."""
    from pathlib import Path

    from harness.records import RunRecord, check_output_dir, now, write_json, write_jsonl
    from harness.data import parse_data
    from training.contamination import benchmark_texts, check, training_texts

    names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if not names:
        raise SparError("--benchmarks: empty; name at least one benchmark")
    n, min_words = int_flag(args.n, "--n"), int_flag(args.min_words, "--min-words")
    output = Path(args.output or Path("results") / "contamination" / f"{Path(args.prompts).stem}.jsonl")
    check_output_dir(output.parent, "--output")
    texts, origin = training_texts(args.prompts, args.responses)
    sources = parse_data(args.data, names)
    report = check(texts, {name: benchmark_texts(name, sources[name]) for name in names}, n, args.short, origin,
                   min_words)
    write_jsonl(output, [dataclasses.asdict(p) for p in report.pairs])
    settings = {"prompts": args.prompts, "benchmarks": ",".join(names), "data": args.data, "n": n,
                "short": args.short, "min_words": min_words, "responses": args.responses, "output": str(output)}
    write_json(output.with_suffix(".record.json"), RunRecord("contamination", config=settings, status="finished",
                                                             finished=now(), seconds=report.seconds,
                                                             extra=report.figures()).to_dict())
    console.print(_contamination_table(report))
    pairs = f"{len(report.pairs)} overlapping pair{'' if len(report.pairs) == 1 else 's'}"
    console.print(f"{pairs} -> {output} ({report.seconds:.2f} s to compare)")
    return 0


def _contamination_table(report):
    from rich.table import Table

    table = Table(title=f"contamination of {report.training['source']}: {report.n}-gram or exact overlap after "
                        "normalisation")
    for col in ("benchmark", "prompts", "overlapping", "of which exact", "training texts overlapping"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for name, f in report.benchmarks.items():
        table.add_row(name, str(f.items), str(f.items_overlapping), str(f.items_exact), str(f.training_overlapping))
    counts = ", ".join(f"{k} {v}" for k, v in report.training["texts"].items())
    table.caption = f"training texts: {counts}; normalisation: {report.normalisation}"
    return table


_EXTRA: dict[str, Any] = {}


def _register_extra(sub) -> None:
    """The reporting commands (tables, compare, regress) and the HTML view register their subcommands."""
    from harness import report_cli, view_cli

    _EXTRA.update(report_cli.register(sub))
    _EXTRA.update(view_cli.register(sub))


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k[len("flag:"):]: v for k, v in vars(args).items() if k.startswith("flag:") and v is not None}


def _int(value: str | None, flag: str) -> int | None:
    return None if value is None else int_flag(value, flag)


def iteration_table(rows: list[dict], title: str):
    """One row per quantity, one column per iteration (scores in %, losses as they are)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    for row in rows:
        table.add_column(f"iter {row['iteration']}", justify="right")
    for key in dict.fromkeys(k for row in rows for k in row if k != "iteration"):
        table.add_row(key, *(_cell(key, row.get(key)) for row in rows))
    return table


def _cell(col: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.2f}" if "." in col else f"{value:.4f}"
    return str(value)


def _value(name: str, value: Any) -> str:
    """A metric for the terminal: fractions in %, counts and levels as numbers, missing as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not name.endswith("(levels)"):
        return f"{100 * value:.2f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def print_results(console, metrics: dict[str, dict], title: str) -> None:
    """The summary (each benchmark's headline rows) and each benchmark's detail tables."""
    from rich.table import Table

    from evaluators import get_evaluator

    table = Table(title=title)
    for col, justify in (("benchmark", "left"), ("metric", "left"), ("value (%)", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    details = []
    notes = []
    for bench, values in metrics.items():
        ev = get_evaluator(bench)
        rows = ev.summary_rows(values)
        label = bench + (" (partial)" if values.get("partial") else "")
        for i, (name, value) in enumerate(rows):
            table.add_row(label if i == 0 else "", name, _value(name, value))
        details += ev.detail_tables(values)
        if values.get("counts"):
            notes.append(f"{bench}: " + ", ".join(f"{k}={v}" for k, v in values["counts"].items()))
        coverage = values.get("coverage")
        if isinstance(coverage, dict) and coverage.get("partial"):
            notes.append(f"{bench}: PARTIAL file, {coverage.get('scored')} of {coverage.get('total')} items scored")
    table.caption = "; ".join(notes)
    console.print(table)
    for detail_title, columns, rows in details:
        detail = Table(title=detail_title)
        for col in columns:
            detail.add_column(str(col), justify="left" if col == columns[0] else "right")
        for row in rows:
            detail.add_row(*(_value(str(columns[i]), v) if not isinstance(v, str) else v
                             for i, v in enumerate(row)))
        console.print(detail)


def _benchmarks(console, name: str | None) -> None:
    import dataclasses

    from rich.markup import escape
    from rich.table import Table

    from evaluators import PREFIXES, REGISTRY, evaluator_class, family_class
    from harness.options import help_of

    families = {f"{prefix}:<task>": prefix for prefix in PREFIXES}
    for bench in [name] if name else [*REGISTRY, *families]:
        if bench in families:  # a family of benchmarks: `lm-eval:<task>` names any lm-eval task, group or tag
            cls = family_class(families[bench])
            title = (f"{bench}: one benchmark per task, e.g. --benchmarks {bench.split(':')[0]}:gsm8k; "
                     f"options as --bench {bench.split(':')[0]}:gsm8k.KEY=VALUE")
        else:
            cls = evaluator_class(bench)
            title = f"{bench}: scores {cls.scores}; --format {', '.join(f or 'auto' for f in cls.formats)}"
        table = Table(title=escape(title))
        for col in ("option (--bench NAME.KEY=VALUE)", "default", "help"):
            table.add_column(col)
        defaults = cls.Options()
        for f in dataclasses.fields(cls.Options):
            table.add_row(f"{bench}.{f.name}", escape(repr(getattr(defaults, f.name))),
                          escape(help_of(cls.Options, f.name)))
        console.print(table)


def _run(args: argparse.Namespace, console) -> int:
    from harness import suite
    from harness.config import load_eval_config
    from harness.progress import RichReporter

    reporter = RichReporter()
    if args.command == "eval":
        cfg = load_eval_config(args.config, _flags(args), args.overrides, args.bench_overrides)
        result = suite.run_eval(cfg, reporter)
        title = f"{cfg.model.name} ({cfg.model.backend})"
    elif args.command == "quickstart":
        from evaluators import QUICKSTART
        from harness.models import EMBEDDED_NAME

        values = {"model.name": EMBEDDED_NAME, "benchmarks": QUICKSTART["benchmark"],
                  "data": args.data or QUICKSTART["data"],
                  "max_new_tokens": _int(args.max_new_tokens, "--max-new-tokens"),
                  "output": args.output or str(suite.default_output("quickstart"))}
        if args.limit is not None:
            values["limit"] = _int(args.limit, "--limit")
        cfg = load_eval_config(**values)
        reporter.note(f"quickstart: {EMBEDDED_NAME} on {QUICKSTART['benchmark']}-format prompts "
                      f"({cfg.data}), offline on CPU")
        result = suite.run_eval(cfg, reporter)
        title = f"{EMBEDDED_NAME} (hf)"
    elif args.command == "score":
        given = [(flag, v) for flag, v in (("--outputs", args.outputs), ("--responses", args.responses),
                                           ("--judgments", args.judgments)) if v]
        if len(given) != 1:
            from evaluators import evaluator_class

            what = "--judgments" if evaluator_class(args.benchmark).scores == "judgments" else "--responses"
            raise SparError(f"spar score {args.benchmark} needs one file: {what} FILE"
                            if not given else f"give one of {', '.join(f for f, _ in given)}, not several")
        cfg = load_eval_config(args.config, _flags(args), args.overrides, args.bench_overrides)
        if not cfg.output:
            raise SparError("spar score needs --output FOLDER")
        result = suite.run_score(args.benchmark, given[0][1], cfg.output, cfg, reporter, args.fmt,
                                 args.allow_partial, args.skip_invalid)
        title = f"scored {given[0][1]}"
    elif args.command == "run":
        return _run_experiment(args, console, reporter)
    elif args.command == "contamination":
        return _contamination(args, console)
    elif args.command == "benchmarks":
        _benchmarks(console, args.name)
        return 0
    elif args.command == "prompts":
        cfg = load_eval_config(None, _flags(args), args.overrides)
        counts = suite.run_evolve(cfg, args.seeds, args.output, _int(args.limit, "--limit"),
                                  float_flag(args.temperature, "--temperature"),
                                  _int(args.max_new_tokens, "--max-new-tokens"), reporter)
        console.print(f"evolved prompts: {counts} -> {args.output}")
        return 0
    else:
        return _EXTRA[args.command](args, console)
    print_results(console, result.metrics, title)
    console.print(f"run folder: {result.output}")
    return 0


def _run_experiment(args: argparse.Namespace, console, reporter) -> int:
    from harness import suite
    from training.config import load_run_config
    from training.loop import check_prompts, run_experiment, run_label, summary_row
    from training.methods import get_method

    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"output_dir={args.output}")
    if args.iterations is not None:
        overrides.append(f"iterations={_int(args.iterations, '--iterations')}")
    run_cfg = load_run_config(args.config, overrides)
    check_prompts(run_cfg)  # cheap checks first; then the eval data, all before any work
    if args.dry_run:
        from training.dry_run import dry_run

        for line in dry_run(run_cfg, reporter, suite.checkpoint_evaluator).lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return 0
    records = run_experiment(run_cfg, reporter, evaluate=suite.checkpoint_evaluator(run_cfg, reporter))
    label = run_label(run_cfg, get_method(run_cfg.method))
    rows = [summary_row(r) for r in records if r["extra"]["complete"]]
    order = dict.fromkeys(k for row in reversed(rows) for k in row)  # a trained iteration's order: counts, then scores
    rows = [{k: row.get(k) for k in order} for row in rows]
    zero = " (iteration 0 = the starting models)" if any(row["iteration"] == 0 for row in rows) else ""
    if rows:
        table = iteration_table(rows, f"{run_cfg.experiment} ({label}): per-iteration summary, scores in %{zero}")
        table.caption = LOSS_NOTE if any(k.endswith("_loss") for row in rows for k in row) else None
        console.print(table)
    else:  # until= stopped every iteration before its last stage: nothing complete to tabulate
        console.print(f"{run_cfg.experiment} ({label}): no complete iteration to summarise (until={run_cfg.until}); "
                      "each stage's counts are in iter_<t>/record.json")
    console.print(f"experiment folder: {run_cfg.out}")
    return 0


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError
    from rich.console import Console

    from harness.options import validation_message

    console = Console(width=None if sys.stdout.isatty() else 160)  # piped output keeps wide tables readable
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        args = _parser().parse_args(argv)
        return _run(args, console)
    except SparError as exc:
        print(f"spar: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a value checked where it was built rather than where it was read
        print(f"spar: error: {validation_message(exc, 'option')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spar: interrupted; run the same command again to resume from the cache", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
