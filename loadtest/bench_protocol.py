"""Micro-benchmark of the sans-IO protocol core (``requester/protocol``), run by ``make bench``.

Every Atlas operation is timed next to the raw primitive it is built on, in the
same process and the same repetition, so the ratio says what the protocol layer
costs on top of the cryptography whatever the machine:

- vouchers: ``PayerChannel.pay`` (sign), ``Voucher.decode`` (secp256k1 recover)
  and ``PayeeChannel.charge`` against raw coincurve sign / recover;
- chunk statements: ``ManifestHead.statement`` / ``verify_statement`` against raw
  PyNaCl Ed25519 sign / verify of a body of the same size;
- manifests: ``ContentPublisher`` fed 1 GiB in 64 KiB pieces through ``finish()``,
  and ``ContentVerifier`` checking every chunk and the seal, against plain
  ``hashlib.sha256`` over the same bytes in the same pieces;
- chunk hashing: the statement path and ``ChunkStatement.check`` on 256 KiB
  chunks against ``hashlib.sha256`` of the same chunks.

Each group is repeated (5 times by default, in rotating order) and medians are
reported; ``ratio`` is Atlas speed / reference speed (1.00 = as fast as the raw
primitive, 0.25 = four times slower). Usage::

    .venv/bin/python -m loadtest run protocol [--quick] [--reps N] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import coincurve
import nacl.signing

from loadtest.harness import cli, report
from loadtest.harness.machine import machine_facts, machine_lines
from loadtest.harness.rows import GB, GIB, KIB, MIB, references, table
from requester.protocol import (
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    ChannelTerms,
    ChunkStatement,
    ContentPublisher,
    ContentVerifier,
    ManifestHead,
    NodeKey,
    PayeeChannel,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    SendVoucher,
    UrlSource,
    Voucher,
    channel_id,
)

# The same fixed keys as tests/conftest.py (not imported: loadtest stands alone).
EDGE_SEED = bytes(range(32))
PAYER_SECRET = bytes([0x11] * 32)
PAYEE_SECRET = bytes([0x22] * 32)
DEPOSIT = 10**18
EXPIRES_AT = 2_000_000_000
NOW = 1_700_000_000

CHUNK_SIZE = 256 * KIB
PIECE_SIZE = 64 * KIB
BUFFER_SIZE = 4 * MIB
ED25519_SIG_SIZE = 64


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    vouchers: int
    """Vouchers signed, verified and charged per batch."""
    statements: int
    """Chunk statements signed and verified per batch."""
    manifest_bytes: int
    """Bytes fed to ContentPublisher (and checked by ContentVerifier) per batch."""
    hash_chunks: int
    """256 KiB chunks hashed per batch in the chunk-hashing group."""


FULL = Config("full", 5, 5_000, 10_000, GIB, 2_048)
QUICK = Config("quick", 2, 200, 1_000, 16 * MIB, 64)


@dataclass(frozen=True, slots=True)
class Probe:
    """One timed batch: ``run`` does its whole batch and returns the seconds it took."""

    key: str
    run: Callable[[], float]


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    operation: str
    unit: str
    median: float
    reference: str
    reference_median: float
    ratio: float
    """Atlas speed / reference speed: above 1 is faster than the reference."""
    higher_is_better: bool
    work: float
    """Operations or bytes per batch."""
    samples: list[float]
    reference_samples: list[float]


def timed(body: Callable[[], object]) -> float:
    """Seconds ``body`` takes, with the garbage collector out of the way (as timeit does)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        body()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def measure_group(probes: Sequence[Probe], reps: int, *, warmup: bool) -> dict[str, list[float]]:
    """Run every probe once per repetition, rotating the order so none always goes first."""
    if warmup:
        for probe in probes:
            probe.run()
    times: dict[str, list[float]] = {probe.key: [] for probe in probes}
    for rep in range(reps):
        shift = rep % len(probes)
        for probe in [*probes[shift:], *probes[:shift]]:
            times[probe.key].append(probe.run())
    return times


def rate_row(
    id_: str,
    operation: str,
    unit: str,
    work: float,
    times: list[float],
    reference: str,
    reference_work: float,
    reference_times: list[float],
) -> Row:
    """A throughput row: ``work`` per second (divided by 1e9 for GB/s)."""
    scale = GB if unit == "GB/s" else 1.0
    samples = [work / t / scale for t in times]
    reference_samples = [reference_work / t / scale for t in reference_times]
    median = statistics.median(samples)
    reference_median = statistics.median(reference_samples)
    return Row(
        id_,
        operation,
        unit,
        median,
        reference,
        reference_median,
        median / reference_median,
        True,
        work,
        samples,
        reference_samples,
    )


def time_row(
    id_: str,
    operation: str,
    work: float,
    times: list[float],
    reference: str,
    reference_times: list[float],
) -> Row:
    """A wall-time row for a whole batch; the ratio is still speed over speed."""
    median = statistics.median(times)
    reference_median = statistics.median(reference_times)
    return Row(
        id_,
        operation,
        "s",
        median,
        reference,
        reference_median,
        reference_median / median,
        False,
        work,
        list(times),
        list(reference_times),
    )


# --- vouchers -------------------------------------------------------------------------------


def make_terms(payer: PayerKey, payee: PayerKey) -> ChannelTerms:
    domain = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    cid = channel_id(domain, payer.address, payee.address, BTT_LOCAL, bytes(32))
    return ChannelTerms(domain, cid, payer.address, payee.address, BTT_LOCAL, DEPOSIT, EXPIRES_AT)


def sign_vouchers(terms: ChannelTerms, payer: PayerKey, count: int) -> list[Voucher]:
    """``count`` vouchers of amounts 1, 2, ... as a fresh channel pays them, one unit each."""
    channel = PayerChannel(terms, payer)
    out: list[Voucher] = []
    for _ in range(count):
        send = channel.pay(1, NOW)[1]
        if not isinstance(send, SendVoucher):
            raise RuntimeError("PayerChannel.pay did not return SendVoucher second")
        out.append(send.voucher)
    return out


def bench_vouchers(cfg: Config) -> list[Row]:
    payer, payee = PayerKey(PAYER_SECRET), PayerKey(PAYEE_SECRET)
    terms = make_terms(payer, payee)
    n = cfg.vouchers
    vouchers = sign_vouchers(terms, payer, n)
    encoded = [v.encode() for v in vouchers]
    digests = [v.digest() for v in vouchers]
    # coincurve wants the recovery id (0 or 1) where ecrecover wants v (27 or 28).
    raw_sigs = [v.signature[:64] + bytes([v.signature[64] - 27]) for v in vouchers]
    raw_key = coincurve.PrivateKey(PAYER_SECRET)
    if raw_key.sign_recoverable(digests[0], hasher=None) != raw_sigs[0]:
        raise RuntimeError("raw coincurve signature differs from the voucher's")

    def pay() -> float:
        channel = PayerChannel(terms, payer)
        return timed(lambda: [channel.pay(1, NOW) for _ in range(n)])

    def raw_sign() -> float:
        return timed(lambda: [raw_key.sign_recoverable(d, hasher=None) for d in digests])

    def decode() -> float:
        return timed(lambda: [Voucher.decode(data) for data in encoded])

    def charge() -> float:
        channel = PayeeChannel(terms)
        elapsed = timed(lambda: [channel.charge(1, data, NOW) for data in encoded])
        if channel.paid != n or channel.consumed != n:
            raise RuntimeError("PayeeChannel.charge did not accept every voucher")
        return elapsed

    def raw_recover() -> float:
        return timed(
            lambda: [
                coincurve.PublicKey.from_signature_and_message(s, d, hasher=None)
                for s, d in zip(raw_sigs, digests, strict=True)
            ]
        )

    sign_times = measure_group([Probe("pay", pay), Probe("ref", raw_sign)], cfg.reps, warmup=True)
    verify_times = measure_group(
        [Probe("decode", decode), Probe("charge", charge), Probe("ref", raw_recover)],
        cfg.reps,
        warmup=True,
    )
    sign_ref = "coincurve PrivateKey.sign_recoverable, 32-byte digest"
    recover_ref = "coincurve PublicKey.from_signature_and_message, 32-byte digest"
    return [
        rate_row(
            "voucher_sign",
            "voucher sign (PayerChannel.pay)",
            "ops/s",
            n,
            sign_times["pay"],
            sign_ref,
            n,
            sign_times["ref"],
        ),
        rate_row(
            "voucher_verify",
            "voucher verify (Voucher.decode)",
            "ops/s",
            n,
            verify_times["decode"],
            recover_ref,
            n,
            verify_times["ref"],
        ),
        rate_row(
            "payee_charge",
            "payee decision (PayeeChannel.charge)",
            "ops/s",
            n,
            verify_times["charge"],
            recover_ref,
            n,
            verify_times["ref"],
        ),
    ]


# --- chunk statements -----------------------------------------------------------------------


def make_head(key: NodeKey, size_hint: int) -> ManifestHead:
    return ManifestHead.create(
        key,
        source=UrlSource("https://origin.example/bench.bin"),
        status=200,
        headers=[("content-type", "application/octet-stream")],
        created_at=NOW,
        chunk_size=CHUNK_SIZE,
        size_hint=size_hint,
    )


def bench_statements(cfg: Config) -> list[Row]:
    key = NodeKey(EDGE_SEED)
    head = make_head(key, CHUNK_SIZE * cfg.statements)
    n = cfg.statements
    one_byte = b"\x00"
    statements = [head.statement(key, i, one_byte).encode() for i in range(n)]
    bodies = [s[:-ED25519_SIG_SIZE] for s in statements]
    signatures = [s[-ED25519_SIG_SIZE:] for s in statements]
    raw_key = nacl.signing.SigningKey(EDGE_SEED)
    raw_verify_key = raw_key.verify_key

    def sign() -> float:
        return timed(lambda: [head.statement(key, i, one_byte) for i in range(n)])

    def raw_sign() -> float:
        return timed(lambda: [raw_key.sign(body) for body in bodies])

    def verify() -> float:
        return timed(lambda: [head.verify_statement(s) for s in statements])

    def raw_verify() -> float:
        return timed(
            lambda: [raw_verify_key.verify(b, s) for b, s in zip(bodies, signatures, strict=True)]
        )

    sign_times = measure_group([Probe("sign", sign), Probe("ref", raw_sign)], cfg.reps, warmup=True)
    verify_times = measure_group(
        [Probe("verify", verify), Probe("ref", raw_verify)], cfg.reps, warmup=True
    )
    body_size = len(bodies[0])
    return [
        rate_row(
            "statement_sign",
            "chunk statement sign (ManifestHead.statement, 1 B chunk)",
            "ops/s",
            n,
            sign_times["sign"],
            f"nacl SigningKey.sign, {body_size}-byte body",
            n,
            sign_times["ref"],
        ),
        rate_row(
            "statement_verify",
            "chunk statement verify (ManifestHead.verify_statement)",
            "ops/s",
            n,
            verify_times["verify"],
            f"nacl VerifyKey.verify, {body_size}-byte body",
            n,
            verify_times["ref"],
        ),
    ]


# --- manifests ------------------------------------------------------------------------------


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def bench_manifest(cfg: Config, buffer: bytes) -> list[Row]:
    """Publish and verify ``cfg.manifest_bytes`` built from one reused random buffer."""
    total = cfg.manifest_bytes
    if total % len(buffer) or len(buffer) % CHUNK_SIZE:
        raise ValueError("the data size must be whole buffers, the buffer whole chunks")
    rounds = total // len(buffer)
    pieces = split(buffer, PIECE_SIZE)  # what a socket would hand over, read after read
    chunks = split(buffer, CHUNK_SIZE)  # chunk i of the content is chunks[i % len(chunks)]
    key = NodeKey(EDGE_SEED)
    head = make_head(key, total)
    head_bytes = head.encode()
    published: list[tuple[list[ChunkStatement], bytes]] = []

    def publish() -> float:
        statements: list[ChunkStatement] = []
        sealed: list[bytes] = []

        def body() -> None:
            publisher = ContentPublisher(key, head)
            for _ in range(rounds):
                for piece in pieces:
                    for chunk in publisher.feed(piece):
                        statements.append(chunk.statement)
            tail, seal = publisher.finish()
            statements.extend(chunk.statement for chunk in tail)
            sealed.append(seal.encode())

        elapsed = timed(body)
        if len(statements) != total // CHUNK_SIZE:
            raise RuntimeError("ContentPublisher emitted the wrong number of chunks")
        published[:] = [(statements, sealed[0])]
        return elapsed

    def verify() -> float:
        statements, seal = published[0]
        encoded = [s.encode() for s in statements]
        count = len(chunks)

        def body() -> None:
            verifier = ContentVerifier(ManifestHead.decode(head_bytes))
            for index, statement in enumerate(encoded):
                verifier.verify_chunk(statement, chunks[index % count])
            verifier.accept_seal(seal)
            verifier.check_complete()

        return timed(body)

    def raw_hash() -> float:
        def body() -> None:
            h = hashlib.sha256()
            for _ in range(rounds):
                for piece in pieces:
                    h.update(piece)
            h.digest()

        return timed(body)

    publish()  # the verifier needs statements and a seal before its first batch
    # Batches are long (about a second at full size); the publish above warms up.
    times = measure_group(
        [Probe("publish", publish), Probe("verify", verify), Probe("ref", raw_hash)],
        cfg.reps,
        warmup=False,
    )
    size = f"{total // GIB} GiB" if total >= GIB else f"{total // MIB} MiB"
    reference = "hashlib.sha256 over the same bytes, 64 KiB updates"
    return [
        time_row(
            "manifest_build_time",
            f"manifest build {size} (ContentPublisher feed+finish)",
            total,
            times["publish"],
            reference,
            times["ref"],
        ),
        rate_row(
            "manifest_build_rate",
            f"manifest build {size} (ContentPublisher feed+finish)",
            "GB/s",
            total,
            times["publish"],
            reference,
            total,
            times["ref"],
        ),
        time_row(
            "manifest_verify_time",
            f"manifest verify {size} (ContentVerifier, all chunks+seal)",
            total,
            times["verify"],
            reference,
            times["ref"],
        ),
        rate_row(
            "manifest_verify_rate",
            f"manifest verify {size} (ContentVerifier, all chunks+seal)",
            "GB/s",
            total,
            times["verify"],
            reference,
            total,
            times["ref"],
        ),
    ]


# --- chunk hashing --------------------------------------------------------------------------


def bench_chunk_hashing(cfg: Config, buffer: bytes) -> list[Row]:
    """SHA-256 per 256 KiB chunk as the protocol does it, against hashlib on the same chunks."""
    key = NodeKey(EDGE_SEED)
    n = cfg.hash_chunks
    head = make_head(key, CHUNK_SIZE * n)
    chunks = split(buffer, CHUNK_SIZE)
    mask = len(chunks) - 1
    if len(chunks) & mask:
        raise ValueError("the buffer must hold a power-of-two number of chunks")
    stated = [head.statement(key, i, chunk) for i, chunk in enumerate(chunks)]

    def statement() -> float:
        return timed(lambda: [head.statement(key, i, chunks[i & mask]) for i in range(n)])

    def check() -> float:
        def body() -> None:
            for i in range(n):
                stated[i & mask].check(chunks[i & mask])  # raises unless the hash matches

        return timed(body)

    def raw_hash() -> float:
        return timed(lambda: [hashlib.sha256(chunks[i & mask]).digest() for i in range(n)])

    times = measure_group(
        [Probe("statement", statement), Probe("check", check), Probe("ref", raw_hash)],
        cfg.reps,
        warmup=True,
    )
    total = n * CHUNK_SIZE
    reference = "hashlib.sha256(chunk).digest(), same 256 KiB chunks"
    return [
        rate_row(
            "chunk_hash_statement",
            "chunk hash+sign 256 KiB (ManifestHead.statement)",
            "GB/s",
            total,
            times["statement"],
            reference,
            total,
            times["ref"],
        ),
        rate_row(
            "chunk_hash_check",
            "chunk hash check 256 KiB (ChunkStatement.check)",
            "GB/s",
            total,
            times["check"],
            reference,
            total,
            times["ref"],
        ),
    ]


# --- report ---------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_value(value: float, unit: str) -> str:
    if unit == "ops/s":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:.2f}"


def render(facts: dict[str, Any], cfg: Config, rows: Sequence[Row], rss: float) -> str:
    header = ("operation", "median", "unit", "reference median", "ratio")
    cells = [
        (
            row.operation,
            format_value(row.median, row.unit),
            row.unit,
            format_value(row.reference_median, row.unit),
            f"{row.ratio:.2f}",
        )
        for row in rows
    ]
    out = [
        "Atlas protocol micro-benchmark (loadtest/bench_protocol.py)",
        *machine_lines(facts, load_average=False),
        f"libs:     {facts['openssl']}, coincurve {facts['coincurve']}, PyNaCl {facts['pynacl']}",
        f"mode:     {cfg.mode}, median of {cfg.reps} repetitions; "
        "ratio = Atlas speed / reference speed",
        "",
        *table(header, cells, left=(0, 2)),
        "",
        "references:",
        *references(rows),
        "",
        f"peak RSS: {rss:.0f} MiB",
    ]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    cli.add_common(
        parser,
        reps_help="repetitions per measurement (default 5)",
        quick_help="small sizes and 2 repetitions (a few seconds)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if cli.checked_reps(args.reps) is not None:
        cfg = Config(
            cfg.mode, args.reps, cfg.vouchers, cfg.statements, cfg.manifest_bytes, cfg.hash_chunks
        )
    facts = machine_facts()
    started = time.perf_counter()
    buffer = os.urandom(BUFFER_SIZE)
    rows = [
        *bench_vouchers(cfg),
        *bench_statements(cfg),
        *bench_manifest(cfg, buffer),
        *bench_chunk_hashing(cfg, buffer),
    ]
    elapsed = time.perf_counter() - started
    rss = peak_rss_mib()
    print(render(facts, cfg, rows, rss))
    print(f"wall time: {elapsed:.1f} s")
    if args.json is not None:
        report.write_json(
            args.json,
            "protocol",
            machine=facts,
            config=asdict(cfg),
            wall_time_s=elapsed,
            peak_rss_mib=rss,
            results=[asdict(row) for row in rows],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
