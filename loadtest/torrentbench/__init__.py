"""The parts of ``loadtest/bench_torrent.py`` and the two client processes it times."""
