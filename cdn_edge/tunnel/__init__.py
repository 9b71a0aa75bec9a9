"""CONNECT tunnels through the edge, paid per byte: the request's parsing and rules,
the book of open and reserved tunnels, the dial to the target, the relay that meters
every byte, and the raw listener and HTTP routes that open them.
"""
