"""The proxy's API port answers bad input with a 4xx JSON problem, never a 500 or
``text/plain`` (issue 13, defect 11): a non-ASCII bearer token or relay secret (which
``hmac.compare_digest`` refuses to compare), request heads the parser refuses, and the
router's own 404 and 405."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import Running, start_proxy
from tests.raw_http import BAD_HEADS, HEAD_STATUS, exchange, problem_of


@pytest.fixture(scope="module")
def bare_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A proxy with no wallet; its only edge is a closed port (nothing here reaches it)."""
    running = start_proxy(tmp_path_factory.mktemp("home"), "--edge", "http://127.0.0.1:9")
    yield running
    running.stop()


FETCH = "/v1/fetch?url=http://127.0.0.1/"


def _get(path: str, *headers: bytes) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        pytest.param(_get(FETCH, b"Authorization: Bearer \xc3\xa9t\xc3\xa9"),
                     400, "bad_authorization", id="utf8-bearer"),
        pytest.param(_get(FETCH, b"Authorization: Bearer \xff\xfe"),
                     400, "bad_authorization", id="latin1-bearer"),
        pytest.param(_get(FETCH, b"Authorization: Bearer nope"),
                     401, "unauthorized", id="wrong-bearer"),
        pytest.param(_get("/_atlas/relay", b"X-Atlas-Relay: \xc3\xa9"), 403, "forbidden",
                     id="utf8-relay-secret"),
        pytest.param(_get("/status.json", b"Cookie: atlas_api=\xff\xfe"), 401, "unauthorized",
                     id="non-utf8-cookie"),
        pytest.param(_get("/no/such/page"), 404, "not_found", id="unknown-path"),
        pytest.param(b"POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405,
                     "method_not_allowed", id="wrong-method"),
        *(pytest.param(data, HEAD_STATUS[code], code, id=name) for name, data, code in BAD_HEADS),
    ],
)  # fmt: skip
async def test_bad_input_on_the_api_port_gets_a_problem(
    bare_proxy: Running, request_bytes: bytes, status: int, code: str,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    answered, document = problem_of(await exchange(str(bare_proxy.ready["api"]), request_bytes))
    assert (answered, document["type"].rsplit("/", 1)[-1]) == (status, code), document
    assert "Traceback" not in capfd.readouterr().err
