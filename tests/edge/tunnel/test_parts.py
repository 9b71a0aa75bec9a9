"""Tunnel parts with no I/O: the CONNECT head parser, target checks, the byte meter."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.address_policy import BlockedAddress
from cdn_edge.free_allowance import FreeAllowance
from cdn_edge.tunnel.connect_request import (
    MAX_HEAD,
    TooManyTunnels,
    check_target,
    parse_connect,
    refusal,
)
from cdn_edge.tunnel.meter import TunnelMeter
from requester.errors import Refusal
from requester.protocol import MalformedMessage

TID = "0123456789abcdef0123456789abcdef"


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def test_a_well_formed_connect_parses() -> None:
    request = parse_connect(
        head("CONNECT Example.org:443 HTTP/1.1", "Host: example.org:443", f"atlas-tunnel: {TID}")
    )
    assert (request.host, request.port, request.tunnel_id) == ("example.org", 443, TID)
    assert request.voucher is None and request.target == "example.org:443"
    v6 = parse_connect(head("CONNECT [2001:db8::1]:8443 HTTP/1.1", f"Atlas-Tunnel: {TID}"))
    assert (v6.host, v6.port, v6.target) == ("2001:db8::1", 8443, "[2001:db8::1]:8443")


@given(st.binary(max_size=600))
def test_no_input_raises_anything_but_a_protocol_error(data: bytes) -> None:
    with contextlib.suppress(Refusal):
        parse_connect(data + b"\r\n\r\n")


@given(st.text(max_size=200))
def test_no_target_text_raises_anything_but_a_protocol_error(target: str) -> None:
    with contextlib.suppress(Refusal):
        request = parse_connect(head(f"CONNECT {target} HTTP/1.1", f"Atlas-Tunnel: {TID}"))
        check_target(request, allow_private=False)


def test_head_over_the_limit_is_refused() -> None:
    big = head("CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {TID}", "X: " + "a" * MAX_HEAD)
    with pytest.raises(MalformedMessage, match="8192"):
        parse_connect(big)


@pytest.mark.parametrize("port", [80, 443, 8443])
def test_web_ports_pass_the_port_rule(port: int) -> None:
    check_target(parse_connect(head(f"CONNECT a.example:{port} HTTP/1.1",
                                    f"Atlas-Tunnel: {TID}")), allow_private=False)  # fmt: skip


@pytest.mark.parametrize("port", [22, 25, 8080, 6379, 65535])
def test_other_ports_only_with_allow_private(port: int) -> None:
    request = parse_connect(head(f"CONNECT a.example:{port} HTTP/1.1", f"Atlas-Tunnel: {TID}"))
    with pytest.raises(BlockedAddress):
        check_target(request, allow_private=False)
    check_target(request, allow_private=True)


def test_refusal_is_a_complete_http_answer() -> None:
    raw = refusal(TooManyTunnels("full"), {"Retry-After": "1"})
    head_part, body = raw.split(b"\r\n\r\n", 1)
    assert head_part.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Connection: close" in head_part and b"Retry-After: 1" in head_part
    assert f"Content-Length: {len(body)}".encode() in head_part
    assert b'problems/too_many_tunnels"' in body


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 200_000)), max_size=60))
def test_meter_never_grants_past_what_was_paid(ops: list[tuple[bool, int]]) -> None:
    meter = TunnelMeter.opened(65536, 1, 0.0)
    for step, (is_credit, amount) in enumerate(ops):
        if is_credit:
            meter.credit(amount % 5 + 1)
            assert meter.exhausted_since is None
        else:
            before = meter.relayed
            granted = meter.take(amount, float(step))
            assert 0 <= granted <= amount and meter.relayed == before + granted
        assert meter.relayed <= meter.paid_bytes
        assert (meter.exhausted_since is not None) == (meter.available == 0)


def test_meter_deadlines() -> None:
    meter = TunnelMeter.opened(100, 1, 0.0)
    assert meter.take(60, 1.0) == 60 and meter.expired(10.0, 30, 300) is None
    assert meter.take(60, 2.0) == 40 and meter.exhausted_since == 2.0
    assert meter.expired(31.9, 30, 300) is None and meter.expired(32.0, 30, 300) == "unpaid"
    meter.credit(1)
    assert meter.expired(200.0, 30, 300) is None and meter.expired(302.0, 30, 300) == "idle"


def test_free_allowance_left_matches_take() -> None:
    free = FreeAllowance(budget=1000, window=60)
    assert free.left("a", 0) == 1000
    assert free.take("a", 600, 0)
    assert free.left("a", 1) == 400 and free.left("b", 1) == 1000
    assert free.left("a", 61) == 1000
    assert FreeAllowance(budget=0, window=60).left("a", 0) == 0
