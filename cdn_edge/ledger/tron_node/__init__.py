"""``atlas ledger tron-node``: the smallest faithful offline TRON full node (docs/ledger.md).

No java-tron can be installed here, so this package serves java-tron's HTTP API over an
in-memory chain, for unmodified tronpy. Its parts, each importing only those above it:

- ``protobuf``: java-tron's messages read from JSON and encoded, so txIDs are java-tron's
- ``transactions``: a signed transaction, its txID, its signer, a deployment's address
- ``machine``: pyrevm running the contracts, with energy and per-call atomic state
- ``blocks``: blocks, the clock tests move, receipts
- ``execution``: what each contract kind checks and does, energy bought with TRX
- ``chain``: the state and the broadcast checks (expiry, signature, TAPOS, duplicates)
- ``settings``, ``genesis``, ``node``: flags, what is deployed at start, one running node
- ``views``, ``wallet_api``, ``app``, ``cli``: java-tron's JSON, the endpoints, the program
"""
