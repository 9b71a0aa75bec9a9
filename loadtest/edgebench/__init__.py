"""The parts of ``loadtest/bench_edge.py``: serve, stream and pages, and what they share."""
