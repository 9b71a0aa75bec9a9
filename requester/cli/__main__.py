"""``python -m requester.cli``: the ``atlas`` command (how ``atlas up`` starts its children)."""

from requester.cli.root import main

main()
