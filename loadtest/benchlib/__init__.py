"""Pieces shared by the ``loadtest.bench_*`` benchmarks (``python -m loadtest run NAME``)."""
