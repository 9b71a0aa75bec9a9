"""Hostile input for every decoder and parser that had no property test of its own.

These are the fuzz targets of ``make fuzz`` (tests/fuzz/), run under hypothesis with
the same oracle: a refusal is one of the documented errors, anything else (another
exception, wrong decoded bytes, a 500) fails. Inputs are random bytes, the target's
seeds (made from tests/vectors/) with bytes flipped, cut or spliced, and seeds as they
are. Targets whose oracle an older property test already applies are listed with it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import seeds
from tests.fuzz.registry import all_targets
from tests.fuzz.target import Target, run_one
from tests.fuzz.targets_http import LEDGER, PROXY

TARGETS = all_targets()
HTTP = {"ledger_http", "proxy_http"}
"""Hypothesis runs these with well-formed requests only (below): arbitrary header bytes
reach aiohttp's own parser, whose plain-text 400 is issue 13's defect 11."""
UNCOVERED = sorted(n for n, t in TARGETS.items() if t.covered_by is None and n not in HTTP)


def _mutations(t: Target) -> st.SearchStrategy[bytes]:
    seeds = list(t.seeds())

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.integers(0, 3))
            at = draw(st.integers(0, len(data)))
            if kind == 0 and data:
                data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
            elif kind == 1:
                data[at:at] = draw(st.binary(max_size=16))
            elif kind == 2:
                del data[at : at + draw(st.integers(1, 64))]
            else:
                data = data[:at]
        return bytes(data)

    return st.one_of(st.binary(max_size=512), mutated(), st.sampled_from(seeds))


@pytest.mark.parametrize("name", UNCOVERED)
def test_only_documented_errors(name: str) -> None:
    t = TARGETS[name]

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_mutations(t))
    def check(data: bytes) -> None:
        run_one(t, data)

    check()


def test_every_target_is_checked_somewhere() -> None:
    for name, t in TARGETS.items():
        assert name in UNCOVERED or name in HTTP or t.covered_by, name


@pytest.fixture(scope="module")
def servers() -> Iterator[None]:
    yield
    LEDGER.close()
    PROXY.close()


_PATH_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)


@st.composite
def _requests(draw: st.DrawFn, paths: int, flags: bool) -> bytes:
    """Inputs for the HTTP targets whose header values are printable ASCII (see HTTP)."""
    path = draw(st.one_of(_PATH_TEXT, st.from_regex(r"[0-9a-zA-Z/?=&%.-]{0,80}", fullmatch=True)))
    encoded = path.encode()
    header_count = draw(st.integers(0, 2))
    headers = b""
    for _ in range(header_count):
        name = draw(st.from_regex(r"[a-z-]{1,12}", fullmatch=True)).encode()
        value = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60))
        headers += len(name).to_bytes(2, "big") + name
        headers += len(value).to_bytes(2, "big") + value.encode()
    body = draw(st.one_of(st.binary(max_size=64), st.sampled_from([b"{}", b"[]", b'{"a":1}'])))
    head = bytes([draw(st.integers(0, 3))]) if flags else b""
    method, prefix = draw(st.integers(0, 2)), draw(st.integers(0, paths - 1))
    return (
        head
        + bytes([method, prefix])
        + len(encoded).to_bytes(2, "big")
        + encoded
        + bytes([header_count])
        + headers
        + body
    )


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_requests(9, flags=False))
def test_ledger_answers_every_request_with_a_problem_or_success(servers: None, data: bytes) -> None:
    run_one(TARGETS["ledger_http"], data)


def _pinned(flags: bytes, prefix: int, path: str, headers: list[tuple[str, str]]) -> bytes:
    encoded = path.encode()
    fields = b"".join(
        len(n).to_bytes(2, "big") + n.encode() + len(v).to_bytes(2, "big") + v.encode("latin-1")
        for n, v in headers
    )
    return (
        flags
        + bytes([0, prefix])
        + len(encoded).to_bytes(2, "big")
        + encoded
        + bytes([len(headers)])
        + fields
    )


def test_proxy_mobile_api_refuses_an_unparsable_url_without_a_500(servers: None) -> None:
    """Found by make fuzz (proxy_http): GET /v1/fetch?url=http://[::1/a with the right token
    was a 500 (urlsplit raised ValueError in proxy/backend.py mobile_fetch); now 400 bad_url."""
    run_one(TARGETS["proxy_http"], _pinned(b"\x01", 0, "http://[::1/a", []))


def test_ledger_refuses_a_bad_header_with_a_problem(servers: None) -> None:
    """Found by make fuzz (ledger_http) at 9d784bc: aiohttp's plain-text 400 for a header
    value with a control byte (issue 13, defect 11, since fixed)."""
    run_one(TARGETS["ledger_http"], _pinned(b"", 6, "", [("x-bad", "a\x7fb")]))


def test_a_zstd_chunk_cannot_inflate_past_the_chunk_size() -> None:
    """Found by make fuzz (chunk_answer): requester/chunk_client.py decoded a zstd chunk with
    ZstdDecompressor().decompress(body, max_output_size=chunk_size), which python-zstandard
    ignores when the frame header states a content size: a 6 KiB body inflated to 200 MiB
    before the size check, and a header claiming 2^40 bytes raised MemoryError (not
    ProviderFault), which stopped the whole download. Now a bounded stream read."""
    chunk_answer = TARGETS["chunk_answer"]
    statement = seeds.small_content()[1][0]
    framed = bytes([0]) + len(statement).to_bytes(2, "big") + statement  # zstd, this statement
    claims_a_terabyte = b"\x28\xb5\x2f\xfd\xe0" + (1 << 40).to_bytes(8, "little") + b"\x01\0\0"
    bomb = zstandard.ZstdCompressor().compress(bytes(200 << 20))  # 6 KiB on the wire
    run_one(chunk_answer, framed + claims_a_terabyte)
    tracemalloc.start()
    try:
        run_one(chunk_answer, framed + bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * seeds.SMALL_CHUNK + (1 << 20), f"{peak} bytes held for one 16 KiB chunk"
