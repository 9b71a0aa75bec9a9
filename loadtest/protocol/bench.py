"""Micro-benchmark of the sans-IO protocol core (``requester/protocol``), run by ``make bench``.

Each Atlas operation is timed next to the raw primitive it is built on (coincurve, PyNaCl,
hashlib), in the same process and repetition, groups in rotating order; ``ratio`` = Atlas
speed / reference speed. loadtest/README.md lists the rows.
"""

from __future__ import annotations

import gc
import hashlib
import os
import resource
import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import coincurve
import nacl.signing

from loadtest.harness.bench_main import Bench, Run
from loadtest.harness.rows import GB, GIB, KIB, MIB, Row, make_row, rates, rotated, size_text
from requester import protocol as proto
from requester.protocol.publishing import ChunkCutter, ChunkSigner

# The same fixed keys as tests/conftest.py (not imported: loadtest stands alone).
EDGE_SEED = bytes(range(32))
PAYER_SECRET = bytes([0x11] * 32)
PAYEE_SECRET = bytes([0x22] * 32)
NOW = 1_700_000_000
CHUNK_SIZE = 256 * KIB
PIECE_SIZE = 64 * KIB
ED25519_SIG_SIZE = 64
PARTS = ("vouchers", "statements", "manifest", "hashing")
BUILD_GOAL = 0.75
"""The streaming publisher (the edge's origin pull, less its files and thread) against
hashlib over the same pieces: it adds one Ed25519 signature per 256 KiB chunk (about 25 µs
against 145 µs of SHA-256) and a little Python per part, 0.81 of hashlib's speed in CPU
time on this machine (0.90 with 1 MiB chunks). Joining each chunk (ContentPublisher, which
the row measured before 2026-12-05) made 0.58-0.77 (wall) and 0.33 (CPU): a copy and a
fresh allocation per chunk."""


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    reps: int
    vouchers: int  # signed, verified and charged per batch
    statements: int  # chunk statements signed and verified per batch
    manifest_bytes: int  # fed to the streaming publisher (checked by ContentVerifier) per batch
    hash_chunks: int  # 256 KiB chunks hashed per batch


FULL = Config("full", 5, 5_000, 10_000, GIB, 2_048)
QUICK = Config("quick", 2, 200, 1_000, 16 * MIB, 64)
Probe = Callable[[], float]  # one timed batch: runs the whole batch, returns its seconds
Spec = tuple[str, str, str, float, str, str]  # id, operation, unit, work, probe key, reference


def timed(body: Callable[[], object]) -> float:
    """Seconds ``body`` takes, with the garbage collector out of the way (timeit turns it off)."""
    gc.collect()
    return timeit.Timer(body).timeit(number=1)


def timer(body: Callable[[], object]) -> Probe:
    return lambda: timed(body)


def group(reps: int, probes: Mapping[str, Probe], *specs: Spec, warmup: bool = True) -> list[Row]:
    """Every probe once per repetition, in rotating order so none always goes first; one row
    per spec against the ``ref`` probe: ``work`` per second (GB/s for bytes), so the ratio is
    Atlas speed / reference speed."""
    for probe in probes.values() if warmup else ():
        probe()
    times: dict[str, list[float]] = {key: [] for key in probes}
    for _, key in rotated(reps, list(probes)):
        times[key].append(probes[key]())
    rows = []
    for id_, operation, unit, work, key, reference in specs:
        scale = GB if unit == "GB/s" else 1.0
        made = make_row(id_, operation, unit, rates(work, times[key], scale), reference,
                        rates(work, times["ref"], scale))  # fmt: skip
        rows.append(replace(made, extra={"work": work}))
    return rows


def bench_vouchers(cfg: Config) -> list[Row]:
    payer, payee = proto.PayerKey(PAYER_SECRET), proto.PayerKey(PAYEE_SECRET)
    domain = proto.PaymentDomain(proto.LOCAL_CHAIN_ID, proto.LOCAL_LEDGER_CONTRACT)
    cid = proto.channel_id(domain, payer.address, payee.address, proto.BTT_LOCAL, bytes(32))
    terms = proto.ChannelTerms(
        domain, cid, payer.address, payee.address, proto.BTT_LOCAL, 10**18, 2 * 10**9
    )
    n = cfg.vouchers
    signing = proto.PayerChannel(terms, payer)  # vouchers of amounts 1, 2, ... one unit each
    sends = [signing.pay(1, NOW)[1] for _ in range(n)]
    vouchers = [send.voucher for send in sends if isinstance(send, proto.SendVoucher)]
    if len(vouchers) != n:
        raise RuntimeError("PayerChannel.pay did not return SendVoucher second")
    encoded, digests = [v.encode() for v in vouchers], [v.digest() for v in vouchers]
    # coincurve wants the recovery id (0 or 1) where ecrecover wants v (27 or 28).
    raw_sigs = [v.signature[:64] + bytes([v.signature[64] - 27]) for v in vouchers]
    sign = coincurve.PrivateKey(PAYER_SECRET).sign_recoverable
    recover = coincurve.PublicKey.from_signature_and_message
    if sign(digests[0], hasher=None) != raw_sigs[0]:
        raise RuntimeError("raw coincurve signature differs from the voucher's")

    def pay() -> float:
        channel = proto.PayerChannel(terms, payer)
        return timed(lambda: [channel.pay(1, NOW) for _ in range(n)])

    def charge() -> float:
        channel = proto.PayeeChannel(terms)
        elapsed = timed(lambda: [channel.charge(1, data, NOW) for data in encoded])
        if channel.paid != n or channel.consumed != n:
            raise RuntimeError("PayeeChannel.charge did not accept every voucher")
        return elapsed

    recovered = "coincurve PublicKey.from_signature_and_message, 32-byte digest"
    pairs = list(zip(raw_sigs, digests, strict=True))
    return group(
        cfg.reps, {"pay": pay, "ref": timer(lambda: [sign(d, hasher=None) for d in digests])},
        ("voucher_sign", "voucher sign (PayerChannel.pay)", "ops/s", n, "pay",
         "coincurve PrivateKey.sign_recoverable, 32-byte digest"),
    ) + group(
        cfg.reps, {"decode": timer(lambda: [proto.Voucher.decode(data) for data in encoded]),
                   "charge": charge,
                   "ref": timer(lambda: [recover(s, d, hasher=None) for s, d in pairs])},
        ("voucher_verify", "voucher verify (Voucher.decode)", "ops/s", n, "decode", recovered),
        ("payee_charge", "payee decision (PayeeChannel.charge)", "ops/s", n, "charge", recovered),
    )  # fmt: skip


def make_head(key: proto.NodeKey, size_hint: int) -> proto.ManifestHead:
    return proto.ManifestHead.create(
        key, source=proto.UrlSource("https://origin.example/bench.bin"), status=200,
        headers=[("content-type", "application/octet-stream")], created_at=NOW,
        chunk_size=CHUNK_SIZE, size_hint=size_hint,
    )  # fmt: skip


def bench_statements(cfg: Config) -> list[Row]:
    key, n, one_byte = proto.NodeKey(EDGE_SEED), cfg.statements, b"\x00"
    head = make_head(key, CHUNK_SIZE * n)
    statements = [head.statement(key, i, one_byte).encode() for i in range(n)]
    pairs = [(s[:-ED25519_SIG_SIZE], s[-ED25519_SIG_SIZE:]) for s in statements]
    raw_key = nacl.signing.SigningKey(EDGE_SEED)
    raw_verify, size = raw_key.verify_key.verify, len(pairs[0][0])
    return group(
        cfg.reps, {"sign": timer(lambda: [head.statement(key, i, one_byte) for i in range(n)]),
                   "ref": timer(lambda: [raw_key.sign(body) for body, _ in pairs])},
        ("statement_sign", "chunk statement sign (ManifestHead.statement, 1 B chunk)", "ops/s",
         n, "sign", f"nacl SigningKey.sign, {size}-byte body"),
    ) + group(
        cfg.reps, {"verify": timer(lambda: [head.verify_statement(s) for s in statements]),
                   "ref": timer(lambda: [raw_verify(b, s) for b, s in pairs])},
        ("statement_verify", "chunk statement verify (ManifestHead.verify_statement)", "ops/s",
         n, "verify", f"nacl VerifyKey.verify, {size}-byte body"),
    )  # fmt: skip


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
    key = proto.NodeKey(EDGE_SEED)
    head = make_head(key, total)
    head_bytes = head.encode()
    published: list[tuple[list[proto.ChunkStatement], bytes]] = []

    def publish() -> float:
        statements: list[proto.ChunkStatement] = []
        seals: list[bytes] = []

        def body() -> None:  # as the edge's origin pull drives it, less the files and thread
            cutter, signer = ChunkCutter(CHUNK_SIZE), ChunkSigner(key, head)
            take, add = signer.take, statements.append
            for _ in range(rounds):
                for piece in pieces:
                    for cut in cutter.feed(piece):
                        statement = take(cut)
                        if statement is not None:
                            add(statement)
            last = cutter.finish()
            statement = take(last) if last is not None else None
            if statement is not None:
                add(statement)
            seals.append(signer.seal().encode())

        elapsed = timed(body)
        if len(statements) != total // CHUNK_SIZE:
            raise RuntimeError("the streaming publisher signed the wrong number of chunks")
        published[:] = [(statements, seals[0])]
        return elapsed

    def verify() -> float:
        statements, seal = published[0]
        encoded = [s.encode() for s in statements]

        def body() -> None:
            verifier = proto.ContentVerifier(proto.ManifestHead.decode(head_bytes))
            for index, statement in enumerate(encoded):
                verifier.verify_chunk(statement, chunks[index % len(chunks)])
            verifier.accept_seal(seal)
            verifier.check_complete()

        return timed(body)

    def raw_hash() -> None:
        h = hashlib.sha256()
        for _ in range(rounds):
            for piece in pieces:
                h.update(piece)
        h.digest()

    publish()  # the verifier needs statements and a seal before its first batch
    build = f"manifest build {size_text(total)} (streaming publisher, parts+seal)"
    check = f"manifest verify {size_text(total)} (ContentVerifier, all chunks+seal)"
    ref = "hashlib.sha256 over the same bytes, 64 KiB updates"
    # Batches are long (about a second at full size); the publish above warms up.
    built, checked = group(
        cfg.reps, {"publish": publish, "verify": verify, "ref": timer(raw_hash)},
        ("manifest_build_rate", build, "GB/s", total, "publish", ref),
        ("manifest_verify_rate", check, "GB/s", total, "verify", ref),
        warmup=False,
    )  # fmt: skip
    goal = f"ratio >= {BUILD_GOAL:.2f}"
    return [replace(built, goal=goal, met=built.ratio >= BUILD_GOAL), checked]


def bench_chunk_hashing(cfg: Config, buffer: bytes) -> list[Row]:
    """SHA-256 per 256 KiB chunk as the protocol does it, against hashlib on the same chunks."""
    key, n = proto.NodeKey(EDGE_SEED), cfg.hash_chunks
    head = make_head(key, CHUNK_SIZE * n)
    chunks = split(buffer, CHUNK_SIZE)
    mask = len(chunks) - 1
    if len(chunks) & mask:
        raise ValueError("the buffer must hold a power-of-two number of chunks")
    stated = [head.statement(key, i, chunk) for i, chunk in enumerate(chunks)]

    def check() -> None:
        for i in range(n):
            stated[i & mask].check(chunks[i & mask])  # raises unless the hash matches

    total, ref = n * CHUNK_SIZE, "hashlib.sha256(chunk).digest(), same 256 KiB chunks"
    return group(
        cfg.reps,
        {"statement": timer(lambda: [head.statement(key, i, chunks[i & mask]) for i in range(n)]),
         "check": timer(check),
         "ref": timer(lambda: [hashlib.sha256(chunks[i & mask]).digest() for i in range(n)])},
        ("chunk_hash_statement", "chunk hash+sign 256 KiB (ManifestHead.statement)", "GB/s",
         total, "statement", ref),
        ("chunk_hash_check", "chunk hash check 256 KiB (ChunkStatement.check)", "GB/s", total,
         "check", ref),
    )  # fmt: skip


async def measure_all(run: Run[Config]) -> None:
    cfg, buffer = run.cfg, os.urandom(4 * MIB)
    run.head.append(f"openssl:  {run.facts['openssl']}")
    await run.parts({
        "vouchers": lambda: bench_vouchers(cfg),
        "statements": lambda: bench_statements(cfg),
        "manifest": lambda: bench_manifest(cfg, buffer),
        "hashing": lambda: bench_chunk_hashing(cfg, buffer),
    })  # fmt: skip
    peak = run.checks["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run.notes.append(f"peak RSS of this process: {peak:.0f} MiB")


SPEC = Bench(
    "protocol", "Atlas protocol micro-benchmark (python -m loadtest run protocol)", __doc__,
    FULL, QUICK, lambda cfg: f"median of {cfg.reps} repetitions; ratio = Atlas speed / "
    "reference speed", measure_all, PARTS, reps_help="repetitions per measurement (default 5)",
    libs=("coincurve", "PyNaCl"),
)  # fmt: skip
