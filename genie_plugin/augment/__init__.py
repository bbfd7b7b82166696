"""The ad-hoc commands as library functions: ``augment`` (outputs.py) and ``sweep`` (sweep.py)."""
