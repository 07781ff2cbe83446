"""The `riskmin` command: its parser generated from the settings, the checks made before torch loads, each command.

Layer 6 of 6, the top: it may import every layer below (tests/test_layout.py), and `riskmin.__version__`.
Only `riskmin.__main__` imports it. `riskmin --help` must not import torch, so `_main` and `_early`
import the base alone at module level and the commands import the rest when they run.
"""
