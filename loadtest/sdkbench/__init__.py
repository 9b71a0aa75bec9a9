"""The parts of ``loadtest/bench_sdk.py``; its network is also bench_proxy's."""
