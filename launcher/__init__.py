"""The local Atlas network: ``atlas up`` (:mod:`launcher.up`), its supervisor, its ports,
and the one process runner (:mod:`launcher.processes`) that it, the tests and the
benchmarks use to start a server and stop it.

It starts the ledger, the edges and the proxy as programs, never imports them: it may
import the SDK (``requester``), never ``cdn_edge`` or ``proxy`` (an import contract).
"""
