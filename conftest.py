"""The doctests of src/riskmin: riskmin.sklearn's need scikit-learn, an optional extra, and are left out without it."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("sklearn") else ["src/riskmin/sklearn.py"]
