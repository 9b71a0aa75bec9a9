"""The parts of ``loadtest/bench_proxy.py``: rps, latency, stream and rss, and their setup."""
