"""Running a model on benchmarks: the eval/score config (`config`) and the runs of `spar eval`, `spar score`, the
eval stages of `spar run` and `spar prompts evolve` (`runner`). Above the core, evaluators and training; only the
commands import it."""
