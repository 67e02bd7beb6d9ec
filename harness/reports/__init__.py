"""Reports on finished runs: the paper's tables beside the published numbers, paired comparisons of two runs,
figures, the regression gate, the terminal summary of a run and the HTML view. The commands that print and write
them are `spar tables`, `spar compare`, `spar regress` and `spar view` (`harness/commands/`).

- `runs`: run and experiment folders read as labelled `Run`s (`collect_runs`, `load_run`);
- `layout`: table and figure layouts from `results/paper/tables.yaml` (no benchmark is named in code);
- `cells`: measured values with seeded bootstrap intervals over each benchmark's units (`CellMaker`);
- `tables`, `render`: the tables and their Markdown / LaTeX (booktabs) / CSV / terminal forms;
- `plots`: per-iteration, inference-scaling and score-against-tokens figures (matplotlib, PNG and SVG);
- `costs`: the compute table (tokens, seconds, GPU-seconds per method and iteration, from the `compute` records);
- `compare`: `compare_runs` (paired bootstrap interval, per row McNemar / clustered McNemar / bootstrap test,
  Holm-corrected verdicts; refuses runs on different data or scorers);
- `regress`: `check` a run against a stored baseline, `write_baseline`;
- `summary`: a run's metrics as terminal tables (`print_results`, for eval, score and quickstart);
- `view`: the self-contained HTML report of runs and experiments (Jinja2 templates in `view/templates/`).

The statistics are `harness.core.stats` (generic) and `evaluators.uncertainty` (per benchmark).
"""

from harness.reports.cells import Cell, CellMaker
from harness.reports.compare import Comparison, check_comparable, compare_runs
from harness.reports.layout import Layout, load_layout
from harness.reports.runs import Run, collect_runs, load_run
from harness.reports.tables import Table, build_tables

__all__ = ["Cell", "CellMaker", "Comparison", "Layout", "Run", "Table", "build_tables", "check_comparable",
           "collect_runs", "compare_runs", "load_layout", "load_run"]
