"""The ``atlas`` command line: every click command of the SDK, apart from the library.

- :mod:`requester.cli.root`: the ``atlas`` group (``main``); other packages' commands
  (``edge``, ``ledger``, ``proxy``, ``up``) plug in through the ``atlas.commands``
  entry points.
- :mod:`requester.cli.fetch` (``atlas fetch``) and :mod:`requester.cli.fetch_output`
  (its ``FILE.part`` and sidecar); :mod:`requester.cli.wallet` (``atlas wallet``,
  ``atlas channel``) and :mod:`requester.cli.channel_listing`; :mod:`requester.cli.decode`.
- :mod:`requester.cli.amounts` and :mod:`requester.cli.listener_options`: option
  parsing the edge's and the proxy's commands share.

The library (every other module of ``requester``) imports nothing from here, nor click
(an import-linter contract).
"""

from requester.cli.root import main

__all__ = ["main"]
