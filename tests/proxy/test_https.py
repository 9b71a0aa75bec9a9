"""HTTPS through the proxy: ``--intercept`` opens TLS with the proxy's CA and fetches the
page through paid edges, like plain HTTP. The origin is a local TLS server whose
certificate comes from a throwaway CA (trustme) that the edges are told to trust."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

from requester.protocol import BTT_LOCAL, parse_amount
from tests.origin_server import pattern
from tests.processes import Running, start_edge_env, start_origin, start_proxy
from tests.proxy.conftest import api, bearer, curl
from tests.sdk.conftest import PASSPHRASE, Home, fund_edges, make_home

CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    """The CA the TLS edges trust (``SSL_CERT_FILE``)."""
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory, tls_ca: trustme.CA) -> dict[str, Path]:
    ca = tls_ca
    cert = ca.issue_cert("127.0.0.1", "localhost")
    base = tmp_path_factory.mktemp("tls")
    files = {"ca": base / "ca.pem", "cert": base / "cert.pem", "key": base / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(files["cert"]), append=True)
    return files


@pytest.fixture(scope="module")
def tls_origin(tls_files: dict[str, Path]) -> Iterator[Running]:
    running = start_origin((tls_files["cert"], tls_files["key"]))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tls_edges(tmp_path_factory: pytest.TempPathFactory, ledger: Running,
              tls_files: dict[str, Path]) -> Iterator[list[Running]]:  # fmt: skip
    env = {"SSL_CERT_FILE": str(tls_files["ca"])}
    started = [start_edge_env(tmp_path_factory.mktemp("tls-edge"), ledger.url, env,
                              "--free-mib", "0")]  # fmt: skip
    import asyncio

    asyncio.run(fund_edges(ledger.url, [e.url for e in started]))
    yield started
    for edge in started:
        edge.stop()


@pytest.fixture(scope="module")
def intercepting(tmp_path_factory: pytest.TempPathFactory, tls_edges: list[Running],
                 ledger: Running) -> Iterator[tuple[Running, Home]]:  # fmt: skip
    home = make_home(tmp_path_factory.mktemp("icpt"), [e.url for e in tls_edges], ledger.url)
    running = start_proxy(home.path, "--intercept", env={"ATLAS_PASSPHRASE": PASSPHRASE})
    yield running, home
    running.stop()


def test_intercepted_https_is_fetched_through_edges(
    intercepting: tuple[Running, Home], tls_origin: Running
) -> None:
    proxy, home = intercepting
    ca = home.path / "mitmproxy" / "mitmproxy-ca-cert.pem"
    assert ca.exists() and proxy.ready["ca_cert"] == str(ca)
    size = 2 * CHUNK + 99
    headers = home.path / "headers.txt"
    got = curl("-x", proxy.url, "--cacert", str(ca), "-D", str(headers),
               f"{tls_origin.url}/bytes/{size}?t=icpt")  # fmt: skip
    assert got.returncode == 0, got.stderr
    head, body = headers.read_bytes().strip().split(b"\r\n\r\n")[-1], got.stdout
    assert b"via: 1.1 atlas" in head.lower() and b"x-atlas-content-id" in head.lower()
    assert body == pattern(0, size)


def test_the_ca_and_its_install_page_are_served(intercepting: tuple[Running, Home]) -> None:
    proxy, home = intercepting
    ca = (home.path / "mitmproxy" / "mitmproxy-ca-cert.pem").read_bytes()
    assert curl("-x", proxy.url, "http://atlas.proxy/ca.pem").stdout == ca
    page = curl(f"{api(proxy)}/ca").stdout
    assert b"certutil" in page and b"ca.pem" in page


@pytest.fixture(scope="module")
def tunnelling(tmp_path_factory: pytest.TempPathFactory, tls_edges: list[Running],
               ledger: Running) -> Iterator[tuple[Running, Home]]:  # fmt: skip
    home = make_home(tmp_path_factory.mktemp("tunnel"), [e.url for e in tls_edges], ledger.url)
    running = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    yield running, home
    running.stop()


def test_https_tunnels_through_a_paid_edge_end_to_end(
    tunnelling: tuple[Running, Home], tls_origin: Running, tls_files: dict[str, Path],
    tls_edges: list[Running],
) -> None:  # fmt: skip
    proxy, home = tunnelling
    size = 3 * 1024 * 1024 + 7
    headers = home.path / "tunnel-headers.txt"
    got = curl("-x", proxy.url, "--cacert", str(tls_files["ca"]), "-D", str(headers),
               f"{tls_origin.url}/bytes/{size}?t=tunnel")  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert got.stdout == pattern(0, size)
    last = headers.read_bytes().strip().split(b"\r\n\r\n")[-1].lower()
    assert b"via: 1.1 atlas" not in last  # the origin's own TLS answer, not a relay's
    metrics = curl(f"{tls_edges[0].url}/metrics").stdout.decode()
    relayed = sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
        if line.startswith("atlas_edge_tunnel_bytes")
    )  # fmt: skip
    assert relayed >= size
    status = json.loads(curl(*bearer(home), f"{api(proxy)}/status.json").stdout)
    spent = parse_amount(status["spent_today"], BTT_LOCAL)
    assert spent > 0 and status["per_site"]["127.0.0.1"]


def _origin_with(cert: trustme.LeafCert, base: Path) -> Running:
    files = (base / "cert.pem", base / "key.pem")
    cert.private_key_pem.write_to_path(str(files[1]))
    cert.cert_chain_pems[0].write_to_path(str(files[0]))
    return start_origin(files)


@pytest.fixture(scope="module")
def bad_tls_origins(tmp_path_factory: pytest.TempPathFactory,
                    tls_ca: trustme.CA) -> Iterator[dict[str, Running]]:  # fmt: skip
    """Origins the edges cannot trust: a certificate from a CA they do not know, and one
    from the CA they trust but for another name."""
    base = tmp_path_factory.mktemp("bad-tls")
    (base / "stranger").mkdir()
    (base / "misnamed").mkdir()
    started = {
        "stranger": _origin_with(trustme.CA().issue_cert("127.0.0.1"), base / "stranger"),
        "misnamed": _origin_with(tls_ca.issue_cert("other.example"), base / "misnamed"),
    }
    yield started
    for running in started.values():
        running.stop()


@pytest.mark.parametrize("kind", ["stranger", "misnamed"])
def test_an_origin_certificate_that_does_not_verify_is_named_with_the_edges_code(
    intercepting: tuple[Running, Home], bad_tls_origins: dict[str, Running], kind: str
) -> None:
    proxy, home = intercepting
    url = f"{bad_tls_origins[kind].url}/bytes/10?t=badtls-{kind}"
    ca = home.path / "mitmproxy" / "mitmproxy-ca-cert.pem"
    page = curl("-x", proxy.url, "--cacert", str(ca), "-w", "\n%{http_code}", url)
    body, _, status = page.stdout.rpartition(b"\n")
    assert status == b"502", (status, body[:500])
    text = body.decode()
    assert "certificate" in text and "127.0.0.1" in text and "origin_tls_invalid" in text, text
    assert "No Atlas edge could be reached" not in text and "{" not in text.split("<body>")[1]
    auth = f"Authorization: Bearer {(home.path / 'api_token').read_text().strip()}"
    got = curl("-H", auth, "-w", "\n%{http_code}",
               f"{api(proxy)}/v1/fetch?url={quote(url, safe='')}")  # fmt: skip
    body, _, status = got.stdout.rpartition(b"\n")
    problem = json.loads(body)
    assert status == b"502" and problem["type"].endswith("/origin_tls_invalid"), problem
    assert "certificate" in problem["detail"] and "127.0.0.1" in problem["detail"]
    assert "{" not in problem["detail"] and "No Atlas edge" not in problem["title"]
