"""Training: `fit` and its loop, the state of a run in training, preparing its inputs, checks, losses, optimizers
and schedules, user callables, checkpoints and fingerprints, threads, the learning-rate finder, a step's graph.

Layer 4 of 6. `riskmin.callbacks` and `riskmin.distributed` belong to this layer too. It may import
the base (config, metrics, models, policy, _files, _paths), the data layer (_data, data, datasets,
splits) and runs (_runs); never _experiments or _cli (tests/test_layout.py).
"""
