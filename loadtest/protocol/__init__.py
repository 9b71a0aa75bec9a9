"""The protocol micro-benchmark: ``python -m loadtest run protocol`` (``bench.py``)."""
