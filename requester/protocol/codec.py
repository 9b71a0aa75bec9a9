"""The canonical binary encoding every Atlas message is built from.

One encoding serves both the wire and the bytes that are signed, so there is
nothing to canonicalise: integers are big-endian and fixed-width, byte strings
and text carry a length prefix, and a reader refuses trailing bytes. Every
read is bounded by the limit the caller names, so a hostile length field
cannot make a decoder allocate or loop beyond it.
"""

from __future__ import annotations

import base64
import binascii
import struct

from requester.protocol.errors import MalformedMessage

MAGIC_PREFIX = b"AT"
"""Every message starts with ``b"AT"``, a one-letter type and a version byte."""

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

U64_MAX = (1 << 64) - 1
U128_MAX = (1 << 128) - 1


class Writer:
    """Appends canonical fields to a growing byte string."""

    def __init__(self, magic: bytes) -> None:
        self._parts: list[bytes] = [magic]

    def u8(self, value: int) -> Writer:
        return self._int(value, 1)

    def u16(self, value: int) -> Writer:
        return self._int(value, 2)

    def u32(self, value: int) -> Writer:
        return self._int(value, 4)

    def u64(self, value: int) -> Writer:
        return self._int(value, 8)

    def u128(self, value: int) -> Writer:
        return self._int(value, 16)

    def fixed(self, value: bytes, size: int) -> Writer:
        if len(value) != size:
            raise MalformedMessage(f"expected {size} bytes, got {len(value)}")
        self._parts.append(value)
        return self

    def blob16(self, value: bytes) -> Writer:
        """A byte string of at most 65535 bytes, with a u16 length prefix."""
        self.u16(len(value))
        self._parts.append(value)
        return self

    def text16(self, value: str) -> Writer:
        return self.blob16(value.encode("utf-8"))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def _int(self, value: int, size: int) -> Writer:
        if not 0 <= value < 1 << (8 * size):
            raise MalformedMessage(f"integer {value} does not fit in {8 * size} bits")
        self._parts.append(value.to_bytes(size, "big"))
        return self


class Reader:
    """Reads canonical fields from a byte string, refusing anything malformed."""

    def __init__(self, data: bytes, magic: bytes, what: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedMessage(f"{what}: expected bytes")
        self._data = bytes(data)
        self._pos = 0
        self._what = what
        if self._data[: len(magic)] != magic:
            raise MalformedMessage(f"{what}: not an Atlas {what} (bad magic or version)")
        self._pos = len(magic)

    @property
    def offset(self) -> int:
        return self._pos

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self._take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self._take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self._take(8))[0])

    def u128(self) -> int:
        return int.from_bytes(self._take(16), "big")

    def fixed(self, size: int) -> bytes:
        return self._take(size)

    def blob16(self, limit: int, field: str) -> bytes:
        length = self.u16()
        if length > limit:
            raise MalformedMessage(f"{self._what}: {field} is {length} bytes, limit {limit}")
        return self._take(length)

    def text16(self, limit: int, field: str) -> str:
        raw = self.blob16(limit, field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"{self._what}: {field} is not valid UTF-8") from exc

    def end(self) -> None:
        """Refuse trailing bytes: one message has exactly one encoding."""
        extra = len(self._data) - self._pos
        if extra:
            raise MalformedMessage(f"{self._what}: {extra} unexpected trailing bytes")

    def _take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise MalformedMessage(f"{self._what}: truncated at byte {self._pos}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk


def b64url_encode(data: bytes) -> str:
    """Base64url without padding: the text form used in HTTP headers."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes, limit: int, what: str) -> bytes:
    """Decode base64url (padding optional), refusing input longer than ``limit`` bytes."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    raw = raw.strip()
    if len(raw) > (limit * 4 + 2) // 3 + 2:
        raise MalformedMessage(f"{what}: header value longer than {limit} bytes allow")
    if raw.rstrip(b"=").translate(None, _B64URL_ALPHABET):
        raise MalformedMessage(f"{what}: not base64url")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"{what}: not base64url ({exc})") from exc
    if len(decoded) > limit:
        raise MalformedMessage(f"{what}: header value longer than {limit} bytes allow")
    return decoded
