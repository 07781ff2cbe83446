"""Experiments: Monte-Carlo over random splits (the sequential and the stacked engine), runs kept as they finish,
comparisons of candidates and learning curves.

Layer 5 of 6. `riskmin.stats` belongs to this layer too. It may import every layer below: the base
(config, metrics, models, policy, _files, _paths), data (_data, data, datasets, splits), runs
(_runs) and training (_training, callbacks, distributed); never _cli (tests/test_layout.py).
"""
