"""The tunnel port's wire format: CONNECT request heads in, HTTP/1.1 answers out (no I/O).

The tunnel listener is a raw socket server, not aiohttp, because after ``200
Connection established`` the socket stops being HTTP. Parsing the request head
here, as a pure function over bytes, keeps the strict rules (size, syntax,
duplicate headers, no body) in one testable place; the server only reads
bytes and writes what these functions return.

Targets are checked by the same SSRF guard as origin fetches
(:mod:`cdn_edge.address_policy`), with a narrower port rule: a tunnel carries
opaque bytes, so only the web ports are open to strangers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus

from cdn_edge.address_policy import BlockedAddress, check_origin_url, parse_origin_url
from requester.errors import PROBLEM_JSON, Refusal, ServiceRefusal
from requester.protocol import MalformedMessage, b64url_decode
from requester.protocol.voucher import VOUCHER_SIZE

MAX_HEAD = 8192
"""Request line and headers together, the blank line included."""
MAX_HEADERS = 100
TUNNEL_PORTS = frozenset({80, 443, 8443})
"""Target ports open to anyone; ``--allow-private-origins`` opens all."""
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"

_TUNNEL_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)
_TARGET = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):([0-9]{1,5})", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class TunnelInUse(ServiceRefusal):
    status = 409
    code = "tunnel_in_use"


class TunnelClosed(ServiceRefusal):
    status = 409
    code = "tunnel_closed"


class UnknownTunnel(ServiceRefusal):
    status = 404
    code = "unknown_tunnel"


class TooManyTunnels(ServiceRefusal):
    status = 503
    code = "too_many_tunnels"


class TargetUnreachable(ServiceRefusal):
    status = 502
    code = "target_unreachable"


@dataclass(frozen=True)
class ConnectRequest:
    host: str
    """Host name (lowercase) or IP address, without IPv6 brackets."""
    port: int
    tunnel_id: str
    voucher: bytes | None
    """The raw voucher from ``Atlas-Voucher``, not yet checked beyond base64url."""

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_tunnel_id(raw: str) -> str:
    if not _TUNNEL_ID.fullmatch(raw):
        raise MalformedMessage("a tunnel id is 32 lowercase hex digits")
    return raw


def parse_connect(head: bytes) -> ConnectRequest:
    """Parse a whole request head (ending in a blank line); refuse anything unusual with 400."""
    if len(head) > MAX_HEAD:
        raise MalformedMessage(f"request head is over {MAX_HEAD} bytes")
    if not head.endswith(b"\r\n\r\n"):
        raise MalformedMessage("request head must end with an empty line (CRLF CRLF)")
    try:
        lines = head[:-4].decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise MalformedMessage("request head must be ASCII") from None
    if any(_CONTROL.search(line) for line in lines):
        raise MalformedMessage("request head holds control characters or a bare CR/LF")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise MalformedMessage("request line must be 'CONNECT host:port HTTP/1.1'")
    method, target, version = parts
    if method != "CONNECT":
        raise MalformedMessage(f"this port only takes CONNECT, not {method[:20]!r}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise MalformedMessage(f"unsupported protocol version {version[:20]!r}")
    headers = _headers(lines[1:])
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        raise MalformedMessage("a CONNECT request has no body")
    tunnel_id = headers.get("atlas-tunnel")
    if tunnel_id is None:
        raise MalformedMessage("Atlas-Tunnel header missing (32 lowercase hex digits)")
    voucher = headers.get("atlas-voucher")
    host, port = _target(target)
    return ConnectRequest(
        host,
        port,
        parse_tunnel_id(tunnel_id),
        b64url_decode(voucher, VOUCHER_SIZE, "Atlas-Voucher") if voucher is not None else None,
    )


def open_request(target: str, tunnel_id: str, voucher: bytes | None) -> ConnectRequest:
    """What a CONNECT would ask, for a tunnel opened over HTTP (same target rules)."""
    host, port = _target(target)
    return ConnectRequest(host, port, parse_tunnel_id(tunnel_id), voucher)


def _headers(lines: list[str]) -> dict[str, str]:
    if len(lines) > MAX_HEADERS:
        raise MalformedMessage(f"more than {MAX_HEADERS} header fields")
    headers: dict[str, str] = {}
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise MalformedMessage("folded header lines are not accepted")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise MalformedMessage(f"malformed header line {line[:40]!r}")
        key = name.lower()
        if key in headers and key in ("atlas-tunnel", "atlas-voucher", "host", "content-length"):
            raise MalformedMessage(f"header {name} appears more than once")
        headers[key] = value.strip(" \t")
    return headers


def _target(target: str) -> tuple[str, int]:
    match = _TARGET.fullmatch(target)
    if match is None:
        raise MalformedMessage(f"CONNECT target must be host:port, got {target[:80]!r}")
    bracketed, name, port_text = match.groups()
    port = int(port_text)
    if not 0 < port <= 65535:
        raise MalformedMessage(f"port {port} is not a TCP port")
    host = (bracketed or name).lower()
    parse_origin_url(f"http://[{host}]/" if bracketed else f"http://{host}/")  # host syntax
    return host, port


def check_target(request: ConnectRequest, *, allow_private: bool) -> None:
    """Refuse a target port off the web ports, or a target written as a refused address.

    Host names are resolved by the server, which checks every address they resolve to.
    """
    if not allow_private and request.port not in TUNNEL_PORTS:
        ports = ", ".join(str(p) for p in sorted(TUNNEL_PORTS))
        raise BlockedAddress(f"port {request.port}", f"tunnels only reach ports {ports}")
    host = f"[{request.host}]" if ":" in request.host else request.host
    check_origin_url(parse_origin_url(f"http://{host}/"), allow_private=allow_private)


def refusal(exc: Refusal, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer with a JSON problem body; the connection closes after it."""
    body = exc.answer().json().encode()
    lines = [f"HTTP/1.1 {exc.status} {HTTPStatus(exc.status).phrase}"]
    fields = {
        "Content-Type": PROBLEM_JSON,
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(headers or {}),
    }
    lines += [f"{name}: {value}" for name, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body
