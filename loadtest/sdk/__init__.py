"""The requester benchmark (``python -m loadtest run sdk``); its network is also the proxy's."""
