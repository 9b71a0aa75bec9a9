"""The requester's keys, encrypted at rest with a passphrase.

A keystore file holds a TRON secp256k1 payer key and an Ed25519 identity,
sealed with XSalsa20-Poly1305 (libsodium secretbox) under a key derived from
the passphrase with Argon2id. Wrong passphrases and tampered files fail the
MAC check; nothing is ever written in the clear.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from requester.errors import SdkError
from requester.protocol import NodeKey, PayerKey
from requester.secret_file import write_secret

FORMAT = "atlas-keystore-1"
PASSPHRASE_ENV = "ATLAS_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)


class KeystoreError(SdkError):
    """The keystore is missing, unreadable, or the passphrase is wrong."""

    status = 500
    code = "keystore_unusable"


@dataclass(frozen=True)
class Keys:
    payer: PayerKey
    identity: NodeKey


def stored_passphrase(home: Path) -> str | None:
    """``ATLAS_PASSPHRASE``, else the ``passphrase`` file ``atlas up`` keeps for a local network."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:  # set but empty counts as unset
        return value
    try:
        return (home / "passphrase").read_text().strip()
    except FileNotFoundError:
        return None


def create(path: Path, passphrase: str, *, fast: bool = False) -> Keys:
    """Make new keys and write them sealed to ``path`` (refuses to overwrite)."""
    if path.exists():
        raise KeystoreError(f"{path} already exists; refusing to overwrite a wallet")
    keys = Keys(PayerKey.generate(), NodeKey.generate())
    _write(path, keys, passphrase, fast=fast)
    return keys


def load(path: Path, passphrase: str) -> Keys:
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise KeystoreError(f"{path} is not an Atlas keystore")
        salt = bytes.fromhex(doc["salt"])
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
            opslimit=int(doc["opslimit"]), memlimit=int(doc["memlimit"]),
        )  # fmt: skip
        plain = json.loads(nacl.secret.SecretBox(key).decrypt(bytes.fromhex(doc["box"])))
    except FileNotFoundError as exc:
        raise KeystoreError(f"no wallet at {path}; create one with `atlas wallet new`") from exc
    except nacl.exceptions.CryptoError as exc:
        raise KeystoreError("wrong passphrase, or the keystore file was altered") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise KeystoreError(f"{path} is damaged: {exc}") from exc
    return Keys(PayerKey(bytes.fromhex(plain["payer"])), NodeKey(bytes.fromhex(plain["identity"])))


def address_of(path: Path) -> str:
    """The payer's TRON address, readable without the passphrase."""
    try:
        return str(json.loads(path.read_text())["address"])
    except (OSError, ValueError, KeyError) as exc:
        raise KeystoreError(f"no readable wallet at {path}") from exc


def _write(path: Path, keys: Keys, passphrase: str, *, fast: bool) -> None:
    ops = nacl.pwhash.argon2id.OPSLIMIT_MIN if fast else nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    mem = nacl.pwhash.argon2id.MEMLIMIT_MIN if fast else nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=ops, memlimit=mem
    )
    plain = json.dumps({"payer": keys.payer.secret.hex(), "identity": keys.identity.seed.hex()})
    doc = {
        "format": FORMAT,
        "address": str(keys.payer.address),
        "kdf": "argon2id",
        "opslimit": ops,
        "memlimit": mem,
        "salt": salt.hex(),
        "box": bytes(nacl.secret.SecretBox(key).encrypt(plain.encode())).hex(),
    }
    write_secret(path, json.dumps(doc, indent=2).encode())
