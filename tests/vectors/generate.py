"""Write the Atlas wire-protocol test vectors: manifest, quote, voucher and credit JSON.

Run from the repository root::

    .venv/bin/python tests/vectors/generate.py           # (re)write the six files
    .venv/bin/python tests/vectors/generate.py --check   # exit 1 if they would change

Every input is fixed (keys, times, bodies), and both signature schemes are
deterministic (Ed25519; secp256k1 with RFC 6979 nonces and low ``s``), so the
output is the same on every machine. ``tests/protocol/test_vectors.py`` checks
the code against these files without importing this script. Changing any
vector changes the protocol: see README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from discovery_vectors import discovery_vectors  # type: ignore[import-not-found]  # a sibling: on sys.path when run as a script
from record_vectors import record_vectors  # type: ignore[import-not-found]  # a sibling, as above
from run_vectors import run_vectors  # type: ignore[import-not-found]  # a sibling, as above

from requester.protocol import (
    ANY_CONTENT,
    BTT,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    TRON_MAINNET_CHAIN_ID,
    UNKNOWN_SIZE,
    Asset,
    ContentPublisher,
    CreditSpend,
    ManifestHead,
    NodeKey,
    PayerKey,
    PaymentDomain,
    Quote,
    Source,
    TorrentSource,
    TronAddress,
    UrlSource,
    Voucher,
    asset_id,
    channel_id,
)
from requester.protocol.payment_domain import keccak256

HERE = Path(__file__).resolve().parent

# The fixed keys of tests/conftest.py.
EDGE_SEED = bytes(range(32))
PAYER_SECRET = bytes([0x11] * 32)
PAYEE_SECRET = bytes([0x22] * 32)

CREATED_AT = 1_700_000_000
HEAD_NONCE = bytes(range(0xA0, 0xB0))
CHUNK_SIZE = 256 * 1024
BODY_SIZE = 600_000
BODY_PATTERN = "body[i] = (i * 31 + 7) % 251 for i in range(600000)"

TRON_VECTOR_CONTRACT_TAG = b"atlas.test-vector.tron-ledger"
"""No Atlas ledger is deployed on TRON mainnet yet: the vectors use this stand-in address."""

VOUCHER_AMOUNTS = (1, 10**18, 2**128 - 1)
CREDIT_NONCE = bytes(range(0xC0, 0xD0))


def vector_body() -> bytes:
    """The 600000-byte body the chunk vectors cut: see ``BODY_PATTERN``."""
    return bytes((i * 31 + 7) % 251 for i in range(BODY_SIZE))


def address_json(address: TronAddress) -> dict[str, str]:
    return {"base58": address.base58(), "hex": address.raw.hex(), "evm": address.evm.hex()}


def asset_json(asset: Asset) -> dict[str, Any]:
    return {
        "code": int(asset.code),
        "symbol": asset.symbol,
        "decimals": asset.decimals,
        "uri": asset.uri,
        "asset_id": asset_id(asset).hex(),
    }


def domain_json(domain: PaymentDomain, note: str) -> dict[str, Any]:
    return {
        "note": note,
        "chain_id": domain.chain_id,
        "chain_id_hex": f"0x{domain.chain_id:08x}",
        "contract": domain.contract.hex(),
        "contract_base58": TronAddress(b"\x41" + domain.contract).base58(),
        "separator": domain.separator.hex(),
    }


def source_json(source: Source) -> dict[str, str]:
    if isinstance(source, UrlSource):
        return {"kind": "url", "url": source.url}
    kind = "btih" if len(source.infohash) == 20 else "btmh"
    return {"kind": kind, "infohash": source.infohash.hex(), "path": source.path}


def head_vector(name: str, key: NodeKey, head: ManifestHead, headers_in: list[list[str]]) -> Any:
    return {
        "name": name,
        "inputs": {
            "edge_seed": key.seed.hex(),
            "created_at": head.created_at,
            "nonce": head.nonce.hex(),
            "source": source_json(head.source),
            "status": head.status,
            "headers": headers_in,
            "chunk_size": head.chunk_size,
            "size_hint": str(head.size_hint),
        },
        "edge_id": head.edge_id.hex(),
        "headers_encoded": [list(h) for h in head.headers],
        "body": head.body.hex(),
        "content_id": head.content_id.hex(),
        "signature": head.signature.hex(),
        "encoded": head.encode().hex(),
    }


def manifest_vectors() -> dict[str, Any]:
    key = NodeKey(EDGE_SEED)
    url_headers = [
        ["Content-Type", "video/mp4"],
        ["Cache-Control", "public, max-age=3600"],
        ["ETag", '"atlas-vector-1"'],
        ["Content-Disposition", 'inline; filename="clip-\u00e9t\u00e9.mp4"'],
    ]
    heads_spec: list[tuple[str, Source, int, list[list[str]], int, int]] = [
        (
            "url",
            UrlSource("https://origin.example/videos/clip.mp4?quality=720p"),
            200,
            url_headers,
            CHUNK_SIZE,
            BODY_SIZE,
        ),
        (
            "torrent-v1",
            TorrentSource(
                bytes.fromhex("0123456789abcdef0123456789abcdef01234567"),
                "season 1/episode 01.mkv",
            ),
            200,
            [["Content-Type", "video/x-matroska"]],
            1024 * 1024,
            UNKNOWN_SIZE,
        ),
        (
            "torrent-v2",
            TorrentSource(bytes(range(0xA0, 0xC0)), "docs/README.txt"),
            200,
            [["Content-Type", "text/plain; charset=utf-8"],
             ["Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT"]],
            16 * 1024,
            12_345,
        ),
    ]  # fmt: skip
    heads: list[Any] = []
    url_head: ManifestHead | None = None
    for name, source, status, headers, chunk_size, size_hint in heads_spec:
        head = ManifestHead.create(
            key,
            source=source,
            status=status,
            headers=[(n, v) for n, v in headers],
            created_at=CREATED_AT,
            nonce=HEAD_NONCE,
            chunk_size=chunk_size,
            size_hint=size_hint,
        )
        url_head = url_head or head
        heads.append(head_vector(name, key, head, headers))
    assert url_head is not None

    body = vector_body()
    publisher = ContentPublisher(key, url_head)
    chunks = publisher.feed(body)
    last, seal = publisher.finish()
    chunks += last
    statements = []
    offset = 0
    for chunk in chunks:
        st = chunk.statement
        statements.append(
            {
                "index": st.index,
                "offset": offset,
                "size": st.size,
                "sha256": st.sha256.hex(),
                "body": st.encode()[:-64].hex(),
                "signature": st.signature.hex(),
                "encoded": st.encode().hex(),
            }
        )
        offset += st.size
    return {
        "description": (
            "Manifest heads (ATM\\x01) for a URL and two torrent sources, and the chunk "
            "statements (ATC\\x01) and seal (ATS\\x01) of a fixed body under the 'url' head. "
            "'body' is the signed bytes (encoded minus the 64-byte Ed25519 signature); "
            "content_id = SHA-256(head body). size_hint is a decimal string "
            "(18446744073709551615 = unknown). Header names are lower-cased when signed: "
            "'headers' is the input, 'headers_encoded' what the head carries."
        ),
        "edge": {"seed": EDGE_SEED.hex(), "edge_id": key.node_id.hex()},
        "heads": heads,
        "content": {
            "head": "url",
            "content_id": url_head.content_id.hex(),
            "chunk_size": url_head.chunk_size,
            "body_size": BODY_SIZE,
            "body_pattern": BODY_PATTERN,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "statements": statements,
            "seal": {
                "total_size": seal.total_size,
                "chunk_count": seal.chunk_count,
                "chunk_list_digest": seal.chunk_list_digest.hex(),
                "body": seal.encode()[:-64].hex(),
                "signature": seal.signature.hex(),
                "encoded": seal.encode().hex(),
            },
        },
    }


def tron_domain() -> PaymentDomain:
    return PaymentDomain(TRON_MAINNET_CHAIN_ID, keccak256(TRON_VECTOR_CONTRACT_TAG)[12:])


def local_domain() -> PaymentDomain:
    return PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)


def quote_vectors(content_id: bytes) -> dict[str, Any]:
    key = NodeKey(EDGE_SEED)
    payee = PayerKey(PAYEE_SECRET).address
    specs: list[tuple[str, Asset, PaymentDomain, bytes, int, int, int, int, int]] = [
        ("local-content", BTT_LOCAL, local_domain(), content_id,
         10**12, 5 * 10**12, 8, CREATED_AT, CREATED_AT + 3600),
        ("tron-any-content", BTT, tron_domain(), ANY_CONTENT,
         2**128 - 1, 3 * 10**15 + 1, 4096, 0, 2**64 - 1),
    ]  # fmt: skip
    wire_sizes = [0, 1, 75_712, CHUNK_SIZE, 1 << 20]
    quotes = []
    for name, asset, domain, cid, per_chunk, per_mib, interval, valid_from, valid_until in specs:
        quote = Quote.create(
            key,
            payee=payee,
            asset=asset,
            domain=domain,
            content_id=cid,
            price_per_chunk=per_chunk,
            price_per_mib=per_mib,
            interval=interval,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        quotes.append(
            {
                "name": name,
                "inputs": {
                    "edge_seed": EDGE_SEED.hex(),
                    "payee": address_json(payee),
                    "asset": asset_json(asset),
                    "chain_id": domain.chain_id,
                    "contract": domain.contract.hex(),
                    "content_id": cid.hex(),
                    "price_per_chunk": str(per_chunk),
                    "price_per_mib": str(per_mib),
                    "interval": interval,
                    "valid_from": str(valid_from),
                    "valid_until": str(valid_until),
                },
                "edge_id": key.node_id.hex(),
                "body": quote.encode()[:-64].hex(),
                "signature": quote.signature.hex(),
                "encoded": quote.encode().hex(),
                "chunk_prices": [
                    {"wire_bytes": w, "price": str(quote.chunk_price(w))} for w in wire_sizes
                ],
            }
        )
    return {
        "description": (
            "Quotes (ATQ\\x01), Ed25519-signed by the edge over 'body' (encoded minus the "
            "signature). Amounts and u64 times are decimal strings. 'local-content' prices the "
            "'url' content of manifest.json; chunk_prices = price_per_chunk + "
            "ceil(wire_bytes * price_per_mib / 2^20)."
        ),
        "quotes": quotes,
    }


def voucher_vectors() -> dict[str, Any]:
    payer = PayerKey(PAYER_SECRET)
    payee = PayerKey(PAYEE_SECRET).address
    channels: list[tuple[str, PaymentDomain, Asset, bytes, str]] = [
        ("local", local_domain(), BTT_LOCAL, bytes(32),
         "embedded ledger: chain 'ATLS', contract keccak256('atlas.local-ledger.v1')[12:]"),
        ("tron-mainnet-btt", tron_domain(), BTT, bytes(range(32)),
         "TRON mainnet (block.chainid 0x2b6653dc), BTT TRC-20; contract is a stand-in: "
         "keccak256('atlas.test-vector.tron-ledger')[12:]"),
    ]  # fmt: skip
    vouchers = []
    domains = {}
    for name, domain, asset, salt, note in channels:
        domains[name] = domain_json(domain, note)
        cid = channel_id(domain, payer.address, payee, asset, salt)
        for amount in VOUCHER_AMOUNTS:
            voucher = Voucher.create(
                payer, domain=domain, channel_id=cid, payee=payee, asset=asset, amount=amount
            )
            vouchers.append(
                {
                    "name": f"{name}-{amount}",
                    "domain": name,
                    "inputs": {
                        "chain_id": domain.chain_id,
                        "contract": domain.contract.hex(),
                        "channel_salt": salt.hex(),
                        "channel_id": cid.hex(),
                        "payer_secret": PAYER_SECRET.hex(),
                        "payer": address_json(payer.address),
                        "payee": address_json(payee),
                        "asset": asset_json(asset),
                        "amount": str(amount),
                    },
                    "domain_separator": domain.separator.hex(),
                    "struct_hash": voucher.struct_hash().hex(),
                    "digest": voucher.digest().hex(),
                    "signature": voucher.signature.hex(),
                    "encoded": voucher.encode().hex(),
                    "header": voucher.to_header(),
                }
            )
    return {
        "description": (
            "Vouchers (ATV\\x01, 188 bytes). The payer signs 'digest' = keccak256(0x1901 || "
            "domain_separator || struct_hash) (EIP-712, docs/protocol.md 6.1) with secp256k1; "
            "'signature' is r || s || v, v in {27, 28}, low s. 'header' is the base64url "
            "(unpadded) Atlas-Voucher header value. channel_id = keccak256(abi.encode("
            "keccak256('atlas.channel-id.v1'), chainId, contract, payer, payee, asset_id, salt)). "
            "Amounts are decimal strings."
        ),
        "domains": domains,
        "vouchers": vouchers,
    }


def credit_vectors(content_id: bytes) -> dict[str, Any]:
    payer = PayerKey(PAYER_SECRET)
    payee = PayerKey(PAYEE_SECRET).address
    specs: list[tuple[str, PaymentDomain, Asset, bytes, int, int]] = [
        ("local-chunk-0", local_domain(), BTT_LOCAL, bytes(32), 0, CREATED_AT),
        ("local-chunk-2", local_domain(), BTT_LOCAL, bytes(32), 2, CREATED_AT + 1),
        ("tron-mainnet-extremes", tron_domain(), BTT, bytes(range(32)), (1 << 22) - 1,
         2**64 - 1),
    ]  # fmt: skip
    spends = []
    for name, domain, asset, salt, index, issued_at in specs:
        cid = channel_id(domain, payer.address, payee, asset, salt)
        spend = CreditSpend.create(
            payer, domain=domain, channel_id=cid, content_id=content_id, index=index,
            issued_at=issued_at, nonce=CREDIT_NONCE,
        )  # fmt: skip
        spends.append(
            {
                "name": name,
                "inputs": {
                    "chain_id": domain.chain_id,
                    "contract": domain.contract.hex(),
                    "channel_id": cid.hex(),
                    "content_id": content_id.hex(),
                    "index": index,
                    "issued_at": str(issued_at),
                    "nonce": CREDIT_NONCE.hex(),
                    "payer_secret": PAYER_SECRET.hex(),
                    "payer": address_json(payer.address),
                },
                "domain_separator": domain.separator.hex(),
                "struct_hash": spend.struct_hash().hex(),
                "digest": spend.digest().hex(),
                "signature": spend.signature.hex(),
                "encoded": spend.encode().hex(),
                "header": spend.to_header(),
            }
        )
    return {
        "description": (
            "Credit spends (ATD\\x01, 189 bytes; docs/protocol.md 6.2): the payer's order to pay "
            "for one chunk from a channel's prepaid credit. The payer signs 'digest' = "
            "keccak256(0x1901 || domain_separator || struct_hash) with secp256k1 (r || s || v, "
            "v in {27, 28}, low s); the payee recovers the signer and requires the channel's "
            "payer. Channels are those of voucher.json (salts 0x00.. and 0x0001..1f); the "
            "content is the 'url' content of manifest.json. 'header' is the Atlas-Credit value."
        ),
        "spends": spends,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build() -> dict[str, str]:
    manifest = manifest_vectors()
    content_id = bytes.fromhex(manifest["content"]["content_id"])
    return {
        "manifest.json": render(manifest),
        "quote.json": render(quote_vectors(content_id)),
        "voucher.json": render(voucher_vectors()),
        "credit.json": render(credit_vectors(content_id)),
        "discovery.json": render(
            {**discovery_vectors(content_id), "provider_records": record_vectors(content_id)}
        ),
        "run.json": render(run_vectors(manifest["content"], 10**12, 10**15)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if any file would change"
    )
    args = parser.parse_args(argv)
    changed = []
    for name, text in build().items():
        path = HERE / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check:
        print(f"vectors differ: {', '.join(changed)}" if changed else "vectors up to date")
        return 1 if changed else 0
    print(f"wrote {', '.join(changed)}" if changed else "vectors already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
