"""spar harness, in four folders, lowest first:

- `harness/core/`: the engine (typed requests, backends, cache, generation, model roles and servers, data, options,
  run records, statistics); it imports nothing above it and names no benchmark;
- `harness/suite/`: running a model on benchmarks (`spar eval`, `spar score`, the eval stages of `spar run`) and
  `spar prompts evolve`;
- `harness/reports/`: tables, comparisons, figures, the regression gate and the HTML view from run folders;
- `harness/commands/`: the `spar` command line, one module per subcommand.

Benchmarks (`evaluators/`) sit on the core, training (`training/`) on both; see docs/architecture.md.
"""

__version__ = "0.1.0"
