"""What every benchmark shares, and the suite that runs them all (``python -m loadtest bench``).

children: the child processes of a run; procfs: CPU and RSS from /proc; machine: facts for
a report's head; rows: the Row type, units and tables; report: parts, the text report and
JSON; cli: flags and system tools; nginx, blobs, edge_api: the reference server, the bytes
served and an edge's HTTP API; suite, suite_table, suite_doc: ``python -m loadtest bench``.
"""
