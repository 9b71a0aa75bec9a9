"""The proxy benchmark (``python -m loadtest run proxy``): see its bench.py."""
