"""Pieces shared by the ``loadtest/bench_*.py`` benchmarks.

The benchmarks run as scripts (``python loadtest/bench_x.py``), so ``loadtest/`` is the
first entry of ``sys.path`` and this package imports as ``benchlib``.
"""
