"""Chromium over HTTPS through the proxy, both ways: tunnelled through a paid edge
(end-to-end TLS, the origin's trustme certificate) and ``--intercept`` (the proxy's CA,
content fetched through edges). Each CA is trusted through its SPKI hash only."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.e2e.test_chromium import CHROMIUM, chromium, pytestmark
from tests.origin_server import SITE_VIDEO_SIZE, pattern
from tests.processes import Running
from tests.proxy.test_https import (
    intercepting,
    tls_ca,
    tls_edges,
    tls_files,
    tls_origin,
    tunnelling,
)
from tests.sdk.conftest import Home

__all__ = ["CHROMIUM", "intercepting", "pytestmark", "tls_ca", "tls_edges", "tls_files",
           "tls_origin", "tunnelling"]  # fmt: skip


def spki(pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def leaf_and_ca(files: dict[str, Path]) -> str:
    return ",".join(spki(files[name]) for name in ("cert", "ca"))


def check_page(dom: str) -> None:
    assert "js ran; color rgb(200, 30, 40)" in dom, dom[-3000:]
    assert 'data-img="40x40"' in dom
    video = pattern(0, SITE_VIDEO_SIZE)
    assert f"range 206 65536 {hashlib.sha256(video[1000000:1065536]).hexdigest()}" in dom
    assert f"whole 200 {SITE_VIDEO_SIZE} {hashlib.sha256(video).hexdigest()}" in dom


def test_tunnelled_https_page(tunnelling: tuple[Running, Home], tls_origin: Running,
                              tls_files: dict[str, Path], tmp_path: Path) -> None:  # fmt: skip
    proxy, _home = tunnelling
    trust = f"--ignore-certificate-errors-spki-list={leaf_and_ca(tls_files)}"
    page = f"{tls_origin.url}/site/index.html"
    dom = chromium(proxy, tmp_path / "p", trust, "--virtual-time-budget=30000", "--dump-dom", page)
    check_page(dom.stdout)


def test_intercepted_https_page(intercepting: tuple[Running, Home], tls_origin: Running,
                                tmp_path: Path) -> None:  # fmt: skip
    proxy, home = intercepting
    ca = home.path / "mitmproxy" / "mitmproxy-ca-cert.pem"
    trust = f"--ignore-certificate-errors-spki-list={spki(ca)}"
    page = f"{tls_origin.url}/site/index.html"
    dom = chromium(proxy, tmp_path / "p", trust, "--virtual-time-budget=30000", "--dump-dom", page)
    check_page(dom.stdout)
    assert "Hello through Atlas" in dom.stdout
