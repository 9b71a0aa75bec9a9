"""The compiled Solidity contracts that ship with Atlas, loaded from their JSON artifacts.

``requester/tron/contracts/`` holds each contract's source and the solc output
``compile.js`` wrote from it (one ``NAME.json`` per contract; see its README).
Nothing is compiled at run time, so :func:`load` refuses an artifact whose
recorded source SHA-256 is not that of the ``.sol`` file next to it: a source
edited without recompiling would otherwise deploy bytecode nobody reviewed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from requester.protocol.payment_domain import keccak256

CONTRACTS = Path(__file__).resolve().parent / "contracts"
SOLC_VERSION = "0.8.28+commit.7893614a"


class StaleArtifact(RuntimeError):
    """An artifact does not match its source (or is missing): recompile with compile.js."""


def signature(item: dict[str, Any]) -> str:
    """The canonical signature of an ABI function, event or error: ``name(type,...)``."""
    return f"{item['name']}({','.join(_canonical(p) for p in item['inputs'])})"


def _canonical(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(p) for p in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


@dataclass(frozen=True)
class Artifact:
    """One contract: its ABI, creation and runtime bytecode, and the selectors of its ABI."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    selectors: dict[str, bytes]
    """Function signature (``open(address,uint128,uint64,bytes32)``) -> 4-byte selector."""
    errors: dict[bytes, str]
    """4-byte selector of a custom error -> its signature, to decode revert data."""
    events: dict[str, bytes]
    """Event signature -> topic 0."""

    def selector(self, name_or_signature: str) -> bytes:
        """The selector of a function, by signature or by name if the name is unique."""
        if name_or_signature in self.selectors:
            return self.selectors[name_or_signature]
        found = [s for sig, s in self.selectors.items() if sig.split("(")[0] == name_or_signature]
        if len(found) != 1:
            raise KeyError(f"{self.name} has no single function {name_or_signature!r}")
        return found[0]

    def error_of(self, revert_data: bytes) -> str | None:
        """The signature of the custom error ``revert_data`` starts with, if it is one of ours."""
        return self.errors.get(bytes(revert_data[:4]))


@cache
def load(name: str) -> Artifact:
    """The artifact ``contracts/NAME.json``, checked against its source and compiler."""
    path = CONTRACTS / f"{name}.json"
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        source = (CONTRACTS / raw["source"]).read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise StaleArtifact(f"no usable artifact for {name}: {exc}") from exc
    if hashlib.sha256(source).hexdigest() != raw["sourceSha256"]:
        raise StaleArtifact(f"{raw['source']} changed after {path.name} was compiled: recompile")
    if not str(raw["compiler"]["version"]).startswith(SOLC_VERSION):
        raise StaleArtifact(f"{path.name} was not compiled with solc {SOLC_VERSION}")
    abi: list[dict[str, Any]] = raw["abi"]
    named = [(i["type"], signature(i)) for i in abi if "name" in i]  # the constructor has none
    hashed = {(kind, sig): keccak256(sig.encode()) for kind, sig in named}
    selectors = {sig: h[:4] for (kind, sig), h in hashed.items() if kind == "function"}
    if {s: v.hex() for s, v in selectors.items()} != raw["methodIdentifiers"]:
        raise StaleArtifact(f"{path.name}: the ABI and the method identifiers disagree")
    return Artifact(
        name=name,
        source=raw["source"],
        abi=abi,
        bytecode=bytes.fromhex(raw["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(raw["deployedBytecode"].removeprefix("0x")),
        selectors=selectors,
        errors={h[:4]: sig for (kind, sig), h in hashed.items() if kind == "error"},
        events={sig: h for (kind, sig), h in hashed.items() if kind == "event"},
    )
