"""The edge's keys, made at first start and kept in its data dir (mode 0600).

The Ed25519 node key signs manifests, chunk statements and quotes; the TRON
key is the payee account that channels pay and the ledger credits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from requester.protocol import NodeKey, PayerKey
from requester.secret_file import write_secret

KEY_FILE = "edge-keys.json"


@dataclass(frozen=True)
class EdgeIdentity:
    node: NodeKey
    payee: PayerKey


def load_or_create(data_dir: Path) -> EdgeIdentity:
    path = data_dir / KEY_FILE
    if path.exists():
        raw = json.loads(path.read_text())
        return EdgeIdentity(
            NodeKey(bytes.fromhex(raw["node_seed"])), PayerKey(bytes.fromhex(raw["payee_secret"]))
        )
    identity = EdgeIdentity(NodeKey.generate(), PayerKey.generate())
    keys = {"node_seed": identity.node.seed.hex(), "payee_secret": identity.payee.secret.hex()}
    write_secret(path, json.dumps(keys).encode())
    return identity
