"""Fuzz targets for the wire protocol (requester/protocol) and the SDK's decoding of answers.

Each is what a stranger's bytes reach: a manifest head, chunk statement or seal from
any provider, a quote in a 402, a voucher in ``Atlas-Voucher``, a provider record
from a tracker, a ledger call's JSON, a zstd chunk body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import zstandard

from requester.chunk_checks import accept_chunk
from requester.chunk_faults import ProviderFault
from requester.message_view import describe_message
from requester.protocol import (
    BTT_LOCAL,
    ContentVerifier,
    ManifestHead,
    NodeKey,
    ProviderRecord,
    Quote,
    SignedOp,
    TronAddress,
    Voucher,
    b64url_decode,
    b64url_encode,
    parse_amount,
)
from requester.protocol.manifest import STATEMENT_SIZE
from requester.protocol.node_advert import NodeAdvert
from requester.protocol.provider_record import MAX_RECORD_BYTES
from tests.fuzz import seeds
from tests.fuzz.target import Fields, target

_RECORD_KEY = NodeKey(bytes(range(32)))


def _head_seeds() -> Iterator[bytes]:
    yield from seeds.heads()


@target(
    "manifest_head",
    seeds=_head_seeds,
    covered_by="tests/protocol/test_manifest.py::test_head_decode_fuzz_spliced_into_valid_head",
)
def manifest_head(data: bytes) -> None:
    """ManifestHead.decode: the signed head any provider hands out."""
    head = ManifestHead.decode(data)
    assert head.encode() == data  # one message, one encoding


@target("chunk_statement", seeds=lambda: iter(seeds.statements()))
def chunk_statement(data: bytes) -> None:
    """A chunk statement (Atlas-Chunk) checked against the vectors' URL head."""
    seeds.url_head().verify_statement(data)


@target("seal", seeds=lambda: iter([seeds.seal()]))
def seal(data: bytes) -> None:
    """A seal checked against the vectors' URL head."""
    seeds.url_head().verify_seal(data)


def _verify_seeds() -> Iterator[bytes]:
    _, statements, _, body = seeds.small_content()
    for index, statement in enumerate(statements):
        chunk = body[index * seeds.SMALL_CHUNK : (index + 1) * seeds.SMALL_CHUNK]
        yield bytes([index % 2]) + statement + chunk


@target("chunk_verify", seeds=_verify_seeds)
def chunk_verify(data: bytes) -> None:
    """ContentVerifier.verify_chunk: a statement and a body from an untrusted provider,
    before and after the seal."""
    head, _, sealed, _ = seeds.small_content()
    verifier = ContentVerifier(head)
    if data[:1] == b"\x01":
        verifier.accept_seal(sealed)
    statement, body = data[1 : 1 + STATEMENT_SIZE], data[1 + STATEMENT_SIZE :]
    checked = verifier.verify_chunk(statement, body)
    assert len(body) == checked.size


@target(
    "quote",
    seeds=lambda: iter(seeds.quotes()),
    covered_by="tests/protocol/test_quote.py::test_random_flips_in_random_quotes",
)
def quote(data: bytes) -> None:
    """Quote.decode: the Atlas-Quote of a 402."""
    assert Quote.decode(data).encode() == data


@target(
    "voucher",
    seeds=lambda: iter(seeds.vouchers()),
    covered_by="tests/protocol/test_voucher.py::test_decode_only_raises_protocol_errors",
)
def voucher(data: bytes) -> None:
    """Voucher.decode: signature recovery included."""
    assert Voucher.decode(data).encode() == data


@target(
    "voucher_header",
    seeds=lambda: (h.encode() for h in seeds.voucher_headers()),
    covered_by="tests/protocol/test_voucher.py::test_from_header_only_raises_protocol_errors",
)
def voucher_header(data: bytes) -> None:
    """Voucher.from_header on the header text as aiohttp decodes it (surrogateescape)."""
    Voucher.from_header(data.decode("utf-8", "surrogateescape"))


def _record_seeds() -> Iterator[bytes]:
    for url in ("http://127.0.0.1:8001", "https://edge.example/atlas/"):
        yield ProviderRecord.create(_RECORD_KEY, bytes(32), url, 1_700_000_000).encode()
    discovery = json.loads(seeds.VECTORS.joinpath("discovery.json").read_text())
    for record in discovery["provider_records"]["records"]:  # ATP\x02, with market terms
        yield bytes.fromhex(record["encoded"])


@target("provider_record", seeds=_record_seeds)
def provider_record(data: bytes) -> None:
    """ProviderRecord.decode: what a tracker lists and anyone may announce."""
    assert ProviderRecord.decode(data).encode() == data


def _advert_seeds() -> Iterator[bytes]:
    for advert in json.loads(seeds.VECTORS.joinpath("discovery.json").read_text())["adverts"]:
        yield bytes.fromhex(advert["encoded"])


@target("node_advert", seeds=_advert_seeds)
def node_advert(data: bytes) -> None:
    """NodeAdvert.decode: a BEP 44 value anyone on the DHT may store (docs/protocol.md 12)."""
    advert = NodeAdvert.decode(data, int.from_bytes(data[36:44], "big") if len(data) > 44 else 0)
    assert advert.encode() == data


def _announce_seeds() -> Iterator[bytes]:
    for record in _record_seeds():
        yield json.dumps({"records": [b64url_encode(record)]}).encode()


@target("announce_body", seeds=_announce_seeds)
def announce_body(data: bytes) -> None:
    """The records of a POST /v1/announce body (and of a tracker's providers answer)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return  # read_json's 400
    records = body.get("records") if isinstance(body, dict) else None
    for raw in records if isinstance(records, list) else []:
        if isinstance(raw, str):
            ProviderRecord.decode(b64url_decode(raw, MAX_RECORD_BYTES, "provider record"))


def _call_seeds() -> Iterator[bytes]:
    payer = TronAddress(b"\x41" + bytes(range(20)))
    payee = TronAddress(b"\x41" + bytes(range(1, 21)))
    base = {"signature": "11" * 65, "payer": str(payer), "nonce": "0"}
    yield json.dumps(
        {
            **base,
            "type": "open",
            "payee": str(payee),
            "asset": "btt_local",
            "deposit": "1000",
            "expires_at": "2000000000",
            "salt": "00" * 32,
        }
    ).encode()
    yield json.dumps(
        {
            **base,
            "type": "topup",
            "channel_id": "ab" * 32,
            "amount": "5",
            "expires_at": "2000000000",
        }
    ).encode()
    yield json.dumps({**base, "type": "reclaim", "channel_id": "ab" * 32}).encode()


@target("ledger_call", seeds=_call_seeds)
def ledger_call(data: bytes) -> None:
    """SignedOp.from_json: the body of the ledger's POST /v1/calls."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return  # read_json's 400
    SignedOp.from_json(body)


@target("message_view", seeds=lambda: iter(seeds.every_message()))
def message_view(data: bytes) -> None:
    """describe_message: ``atlas decode`` on any message a user pastes."""
    json.dumps(describe_message(data))


@target(
    "amount",
    seeds=lambda: iter([b"1.5", b"0.000000000000000001 BTT", b"1_000"]),
    covered_by="tests/protocol/test_assets.py (parse_amount on any text)",
)
def amount(data: bytes) -> None:
    """parse_amount: the faucet's amount and every --max-spend/--max-price."""
    units = parse_amount(data.decode("utf-8", "surrogateescape"), BTT_LOCAL)
    assert units >= 0


def _wire_seeds() -> Iterator[bytes]:
    _, statements, _, body = seeds.small_content()
    statement, body = statements[0], body[: seeds.SMALL_CHUNK]
    framed = len(statement).to_bytes(2, "big") + statement
    yield bytes([0]) + framed + zstandard.ZstdCompressor().compress(body)
    yield bytes([1]) + framed + body


@target("chunk_answer", seeds=_wire_seeds, allowed=(ProviderFault,))
def chunk_answer(data: bytes) -> None:
    """accept_chunk: a provider's 200 (zstd on the wire or not), statement header
    and body, as the SDK checks it before keeping a byte."""
    fields = Fields(data)
    encoding = ("zstd", None, "identity", "gzip")[fields.pick(4)]
    statement = fields.blob(STATEMENT_SIZE)
    answer = {"Atlas-Chunk": b64url_encode(statement), "Atlas-Price": "0"}
    if encoding is not None:
        answer["Content-Encoding"] = encoding
    verifier = ContentVerifier(seeds.small_content()[0])
    delivered = accept_chunk("fuzz", verifier, 0, fields.rest(), answer, 0)
    assert len(delivered.data) <= verifier.head.chunk_size
