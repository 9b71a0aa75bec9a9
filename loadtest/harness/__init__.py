"""What every benchmark shares (bench_main, children, procfs, machine, rows, network, nginx,
blobs), and the suite that runs them all (suite, suite_doc: ``python -m loadtest bench``)."""
