"""Data: reading tables and arrays, their columns and encodings, a model's inputs and outputs, each replica's scaling.

Layer 2 of 6, above the base (config, metrics, models, policy, _files, _paths). Its public face is
`riskmin.data` (Data, Splits, standardization, batches), `riskmin.datasets` (built-in data sets) and
`riskmin.splits` (stratified, k-fold and given splits), which belong to this layer too. It may
import the base and this layer; never _runs, _training, _experiments or _cli (tests/test_layout.py).
"""
