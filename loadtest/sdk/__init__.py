"""The requester benchmark (``python -m loadtest run sdk``)."""
