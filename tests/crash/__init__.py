"""The crash matrix: kill -9 at every durable payment step, restart, check the books."""
