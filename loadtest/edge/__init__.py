"""The edge benchmark (``python -m loadtest run edge``): see its bench.py."""
