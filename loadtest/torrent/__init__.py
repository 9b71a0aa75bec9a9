"""The torrent benchmark (``python -m loadtest run torrent``): see its bench.py."""
