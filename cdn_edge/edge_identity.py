"""The edge's keys, made at first start and kept in its data dir (mode 0600).

The Ed25519 node key signs manifests, chunk statements and quotes; the TRON
key is the payee account that channels pay and the ledger credits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from requester.protocol import NodeKey, PayerKey

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
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"node_seed": identity.node.seed.hex(), "payee_secret": identity.payee.secret.hex()},
            handle,
        )
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return identity
