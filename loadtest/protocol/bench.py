"""Micro-benchmark of the sans-IO protocol core (``requester/protocol``), run by ``make bench``.

Every Atlas operation is timed next to the raw primitive it is built on, in the same
process and repetition, so the ratio says what the protocol layer costs on top of the
cryptography whatever the machine (one ``--only`` part per group):

- vouchers: ``PayerChannel.pay`` (sign), ``Voucher.decode`` (secp256k1 recover)
  and ``PayeeChannel.charge`` against raw coincurve sign / recover;
- chunk statements: ``ManifestHead.statement`` / ``verify_statement`` against raw
  PyNaCl Ed25519 sign / verify of a body of the same size;
- manifests: ``ContentPublisher`` fed 1 GiB in 64 KiB pieces through ``finish()``,
  and ``ContentVerifier`` checking every chunk and the seal, against plain
  ``hashlib.sha256`` over the same bytes in the same pieces;
- chunk hashing: the statement path and ``ChunkStatement.check`` on 256 KiB
  chunks against ``hashlib.sha256`` of the same chunks.

Each group is repeated (5 times by default, in rotating order), medians reported; ``ratio``
is Atlas speed / reference speed (1.00 = as fast as the raw primitive, 0.25 = four times
slower). Usage::

    .venv/bin/python -m loadtest run protocol [--quick] [--reps N] [--json PATH]
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import coincurve
import nacl.signing

from loadtest.harness.bench_main import Bench, Run, bench_main
from loadtest.harness.procfs import peak_rss_mib
from loadtest.harness.rows import GB, GIB, KIB, MIB, Row, make_row, rates, size_text
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
PARTS = ("vouchers", "statements", "manifest", "hashing")


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
Probe = tuple[str, Callable[[], float]]
"""One timed batch: its key, and a function that runs the whole batch and returns seconds."""


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


def measure(probes: Sequence[Probe], reps: int, *, warmup: bool = True) -> dict[str, list[float]]:
    """Run every probe once per repetition, rotating the order so none always goes first."""
    for _, run in probes if warmup else ():
        run()
    times: dict[str, list[float]] = {key: [] for key, _ in probes}
    for rep in range(reps):
        shift = rep % len(probes)
        for key, run in [*probes[shift:], *probes[:shift]]:
            times[key].append(run())
    return times


def rate_row(id_: str, operation: str, unit: str, work: float, times: list[float],
             reference: str, reference_times: list[float]) -> Row:  # fmt: skip
    """``work`` per second (GB/s for bytes) or, in ``s``, the wall time of a whole batch;
    either way the ratio is Atlas speed / reference speed."""
    if unit == "s":
        made = make_row(id_, operation, unit, times, reference, reference_times)
        ratio, extra = made.reference_median / made.median, {"higher_is_better": False}
    else:
        scale = GB if unit == "GB/s" else 1.0
        made = make_row(id_, operation, unit, rates(work, times, scale), reference,
                        rates(work, reference_times, scale))  # fmt: skip
        ratio, extra = made.ratio, {"higher_is_better": True}
    return replace(made, ratio=ratio, extra={**extra, "work": work})


# --- vouchers -------------------------------------------------------------------------------


def bench_vouchers(cfg: Config) -> list[Row]:
    payer, payee = PayerKey(PAYER_SECRET), PayerKey(PAYEE_SECRET)
    domain = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    cid = channel_id(domain, payer.address, payee.address, BTT_LOCAL, bytes(32))
    terms = ChannelTerms(domain, cid, payer.address, payee.address, BTT_LOCAL, DEPOSIT, EXPIRES_AT)
    n = cfg.vouchers
    signing = PayerChannel(terms, payer)  # vouchers of amounts 1, 2, ... one unit each
    sends = [signing.pay(1, NOW)[1] for _ in range(n)]
    vouchers = [send.voucher for send in sends if isinstance(send, SendVoucher)]
    if len(vouchers) != n:
        raise RuntimeError("PayerChannel.pay did not return SendVoucher second")
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

    def charge() -> float:
        channel = PayeeChannel(terms)
        elapsed = timed(lambda: [channel.charge(1, data, NOW) for data in encoded])
        if channel.paid != n or channel.consumed != n:
            raise RuntimeError("PayeeChannel.charge did not accept every voucher")
        return elapsed

    recover, sign = coincurve.PublicKey.from_signature_and_message, raw_key.sign_recoverable
    sign_times = measure(
        [("pay", pay), ("ref", lambda: timed(lambda: [sign(d, hasher=None) for d in digests]))],
        cfg.reps,
    )
    verify_times = measure(
        [("decode", lambda: timed(lambda: [Voucher.decode(data) for data in encoded])),
         ("charge", charge),
         ("ref", lambda: timed(lambda: [recover(s, d, hasher=None)
                                        for s, d in zip(raw_sigs, digests, strict=True)]))],
        cfg.reps,
    )  # fmt: skip
    sign_ref = "coincurve PrivateKey.sign_recoverable, 32-byte digest"
    recover_ref = "coincurve PublicKey.from_signature_and_message, 32-byte digest"
    return [
        rate_row("voucher_sign", "voucher sign (PayerChannel.pay)", "ops/s", n,
                 sign_times["pay"], sign_ref, sign_times["ref"]),
        rate_row("voucher_verify", "voucher verify (Voucher.decode)", "ops/s", n,
                 verify_times["decode"], recover_ref, verify_times["ref"]),
        rate_row("payee_charge", "payee decision (PayeeChannel.charge)", "ops/s", n,
                 verify_times["charge"], recover_ref, verify_times["ref"]),
    ]  # fmt: skip


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
    key, n, one_byte = NodeKey(EDGE_SEED), cfg.statements, b"\x00"
    head = make_head(key, CHUNK_SIZE * n)
    statements = [head.statement(key, i, one_byte).encode() for i in range(n)]
    bodies = [s[:-ED25519_SIG_SIZE] for s in statements]
    signatures = [s[-ED25519_SIG_SIZE:] for s in statements]
    raw_key = nacl.signing.SigningKey(EDGE_SEED)
    raw_verify = raw_key.verify_key.verify
    sign_times = measure(
        [("sign", lambda: timed(lambda: [head.statement(key, i, one_byte) for i in range(n)])),
         ("ref", lambda: timed(lambda: [raw_key.sign(body) for body in bodies]))],
        cfg.reps,
    )  # fmt: skip
    verify_times = measure(
        [("verify", lambda: timed(lambda: [head.verify_statement(s) for s in statements])),
         ("ref", lambda: timed(lambda: [raw_verify(b, s)
                                        for b, s in zip(bodies, signatures, strict=True)]))],
        cfg.reps,
    )  # fmt: skip
    size = len(bodies[0])
    return [
        rate_row("statement_sign", "chunk statement sign (ManifestHead.statement, 1 B chunk)",
                 "ops/s", n, sign_times["sign"], f"nacl SigningKey.sign, {size}-byte body",
                 sign_times["ref"]),
        rate_row("statement_verify", "chunk statement verify (ManifestHead.verify_statement)",
                 "ops/s", n, verify_times["verify"], f"nacl VerifyKey.verify, {size}-byte body",
                 verify_times["ref"]),
    ]  # fmt: skip


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
        seals: list[bytes] = []

        def body() -> None:
            publisher = ContentPublisher(key, head)
            for _ in range(rounds):
                for piece in pieces:
                    for chunk in publisher.feed(piece):
                        statements.append(chunk.statement)
            tail, seal = publisher.finish()
            statements.extend(chunk.statement for chunk in tail)
            seals.append(seal.encode())

        elapsed = timed(body)
        if len(statements) != total // CHUNK_SIZE:
            raise RuntimeError("ContentPublisher emitted the wrong number of chunks")
        published[:] = [(statements, seals[0])]
        return elapsed

    def verify() -> float:
        statements, seal = published[0]
        encoded = [s.encode() for s in statements]

        def body() -> None:
            verifier = ContentVerifier(ManifestHead.decode(head_bytes))
            for index, statement in enumerate(encoded):
                verifier.verify_chunk(statement, chunks[index % len(chunks)])
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
    times = measure([("publish", publish), ("verify", verify), ("ref", raw_hash)], cfg.reps,
                    warmup=False)  # fmt: skip
    build = f"manifest build {size_text(total)} (ContentPublisher feed+finish)"
    check = f"manifest verify {size_text(total)} (ContentVerifier, all chunks+seal)"
    ref = "hashlib.sha256 over the same bytes, 64 KiB updates"
    return [
        rate_row("manifest_build_time", build, "s", total, times["publish"], ref, times["ref"]),
        rate_row("manifest_build_rate", build, "GB/s", total, times["publish"], ref, times["ref"]),
        rate_row("manifest_verify_time", check, "s", total, times["verify"], ref, times["ref"]),
        rate_row("manifest_verify_rate", check, "GB/s", total, times["verify"], ref, times["ref"]),
    ]


# --- chunk hashing --------------------------------------------------------------------------


def bench_chunk_hashing(cfg: Config, buffer: bytes) -> list[Row]:
    """SHA-256 per 256 KiB chunk as the protocol does it, against hashlib on the same chunks."""
    key, n = NodeKey(EDGE_SEED), cfg.hash_chunks
    head = make_head(key, CHUNK_SIZE * n)
    chunks = split(buffer, CHUNK_SIZE)
    mask = len(chunks) - 1
    if len(chunks) & mask:
        raise ValueError("the buffer must hold a power-of-two number of chunks")
    stated = [head.statement(key, i, chunk) for i, chunk in enumerate(chunks)]

    def check() -> None:
        for i in range(n):
            stated[i & mask].check(chunks[i & mask])  # raises unless the hash matches

    times = measure(
        [("statement", lambda: timed(lambda: [head.statement(key, i, chunks[i & mask])
                                              for i in range(n)])),
         ("check", lambda: timed(check)),
         ("ref", lambda: timed(lambda: [hashlib.sha256(chunks[i & mask]).digest()
                                        for i in range(n)]))],
        cfg.reps,
    )  # fmt: skip
    total, ref = n * CHUNK_SIZE, "hashlib.sha256(chunk).digest(), same 256 KiB chunks"
    return [
        rate_row("chunk_hash_statement", "chunk hash+sign 256 KiB (ManifestHead.statement)",
                 "GB/s", total, times["statement"], ref, times["ref"]),
        rate_row("chunk_hash_check", "chunk hash check 256 KiB (ChunkStatement.check)",
                 "GB/s", total, times["check"], ref, times["ref"]),
    ]  # fmt: skip


async def measure_all(run: Run[Config]) -> None:
    cfg, buffer = run.cfg, os.urandom(BUFFER_SIZE)
    run.head.append(f"openssl:  {run.facts['openssl']}")
    await run.parts({
        "vouchers": lambda: bench_vouchers(cfg),
        "statements": lambda: bench_statements(cfg),
        "manifest": lambda: bench_manifest(cfg, buffer),
        "hashing": lambda: bench_chunk_hashing(cfg, buffer),
    })  # fmt: skip
    run.checks["peak_rss_mib"] = peak_rss_mib()
    run.notes.append(f"peak RSS of this process: {run.checks['peak_rss_mib']:.0f} MiB")


SPEC = Bench(
    "protocol", "Atlas protocol micro-benchmark (python -m loadtest run protocol)", __doc__,
    FULL, QUICK, lambda cfg: f"median of {cfg.reps} repetitions; ratio = Atlas speed / "
    "reference speed", PARTS, reps_help="repetitions per measurement (default 5)",
    quick_help="small sizes and 2 repetitions (a few seconds)", libs=("coincurve", "PyNaCl"),
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return bench_main(SPEC, measure_all, argv)


if __name__ == "__main__":
    raise SystemExit(main())
