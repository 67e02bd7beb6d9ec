"""`spar contamination`: n-gram and exact overlap of training prompts with benchmark prompts."""

from __future__ import annotations

import argparse

from harness.commands.flags import csv_list, int_flag
from harness.core.errors import SparError

NAME = "contamination"


def add_parser(sub) -> None:
    """Add `spar contamination` to the subcommand parser."""
    from training.contamination import DEFAULT_BENCHMARKS, NORMALISATION

    p = sub.add_parser(NAME, help="n-gram and exact overlap of training prompts with benchmark prompts")
    p.add_argument("--prompts", required=True, help="training prompts: JSON/JSONL rows with prompt/instruction/input "
                                                    "(or prompt/messages chat turns), a hub id, or `builtin`")
    p.add_argument("--benchmarks", default=DEFAULT_BENCHMARKS, help=f"default {DEFAULT_BENCHMARKS}")
    p.add_argument("--data", default="", help="benchmark data sources, as spar eval --data (default: $SPAR_DATA_DIR, "
                                              "else the hub)")
    p.add_argument("--responses", action="store_true", help="also compare the file's responses (response, output, "
                                                           "completion, chosen, rejected, assistant turns)")
    p.add_argument("--n", default="13", help="n-gram length in words (default 13)")
    p.add_argument("--short", default="contained", choices=("contained", "exact"),
                   help="a text shorter than n words: contained (default: overlaps when found whole inside the other "
                        "text, if it has at least --min-words words) or exact (only an exact match counts)")
    p.add_argument("--min-words", default="8", help="short texts with fewer words count only on an exact match "
                                                    "(default 8, GPT-3's smallest n)")
    p.add_argument("--output", default="", help="JSONL of the overlapping pairs (default results/contamination/"
                                                "<prompts file name>.jsonl; the figures go beside it, .record.json)")
    p.epilog = f"Normalisation: {NORMALISATION}."
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console) -> int:
    """Per benchmark, the prompts the training texts overlap; every pair to --output, the figures beside it."""
    import dataclasses
    from pathlib import Path

    from harness.core.data import parse_data
    from harness.core.records import RunRecord, check_output_dir, now, write_json, write_jsonl
    from training.contamination import benchmark_texts, check, training_texts

    names = csv_list(args.benchmarks)
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
    console.print(_table(report))
    pairs = f"{len(report.pairs)} overlapping pair{'' if len(report.pairs) == 1 else 's'}"
    console.print(f"{pairs} -> {output} ({report.seconds:.2f} s to compare)")
    return 0


def _table(report):
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
