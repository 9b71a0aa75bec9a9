"""``make bench``: every benchmark in one run, one combined table, docs/performance.md."""
