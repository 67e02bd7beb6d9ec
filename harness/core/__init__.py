"""The engine of the harness: typed requests and completions, backends, the generation cache, model roles and
managed servers, data reading, options, run records and statistics. It imports nothing above it (evaluators,
training, the suite, reports, commands) and names no benchmark; tests/test_layers.py checks both."""
