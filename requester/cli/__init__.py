"""The ``atlas`` command line: every click command of the SDK, apart from the library.

- :mod:`requester.cli.root`: the ``atlas`` group (``main``), which imports each
  subcommand's module only when it runs or a help page lists it; other packages'
  commands (``edge``, ``ledger``, ``proxy``, ``up``) plug in through the
  ``atlas.commands`` entry points.
- :mod:`requester.cli.fetch` (``atlas fetch``), :mod:`requester.cli.fetch_run` (the
  download it runs), :mod:`requester.cli.fetch_output` (its ``FILE.part`` and sidecar)
  and :mod:`requester.cli.fetch_progress` (its closing line, and the bar drawn by
  :mod:`requester.cli.fetch_bar`); :mod:`requester.cli.wallet` (``atlas wallet``,
  ``atlas channel``) and :mod:`requester.cli.channel_listing`;
  :mod:`requester.cli.status` (``atlas status``); :mod:`requester.cli.decode`.
- :mod:`requester.cli.options`: click options generated from a program's settings
  declaration (:mod:`requester.settings_spec`), which every program's command uses;
  :mod:`requester.cli.config_show` (``atlas config show``); :mod:`requester.cli.amounts`
  (BTT amounts as arguments, and shown to people).

The library (every other module of ``requester``) imports nothing from here, nor click
(an import-linter contract).
"""

from requester.cli.root import main

__all__ = ["main"]
