"""Runs: `Run` and its directory, what a person sees of a run (header, epoch lines, summaries, plots), export.

Layer 3 of 6. It may import the base (config, metrics, models, policy, _files, _paths) and the
data layer (_data, data, datasets, splits); never _training, _experiments or _cli
(tests/test_layout.py). `fit` writes and returns a `Run`, so runs sit below training.
"""
