"""SPaR and the baselines: producers of checkpoints and training data (built in a later issue)."""
