"""Settlement on TRON: the channel contract, its artifacts and the tronpy ledger backend."""
