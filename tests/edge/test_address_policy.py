"""The SSRF guard's rules: URLs, addresses and ports an edge refuses to fetch.

Pure functions only: nothing here resolves a name or opens a socket.
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.address_policy import (
    DENIED_PORTS,
    MAX_URL_LENGTH,
    BadUrl,
    BlockedAddress,
    check_address,
    check_origin_url,
    check_port,
    parse_origin_url,
)


def refusal(url: str, *, allow_private: bool = False) -> BadUrl | BlockedAddress:
    """The refusal of ``url`` as the fetcher makes it before connecting."""
    with pytest.raises((BadUrl, BlockedAddress)) as info:
        check_origin_url(parse_origin_url(url), allow_private=allow_private)
    assert isinstance(info.value, BadUrl | BlockedAddress)
    return info.value


SSRF_VECTORS = [
    # IPv4 special-purpose ranges
    ("http://127.0.0.1/", "loopback"),
    ("http://127.255.255.254/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://100.127.255.254/", "CGNAT"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0.1.2.3/", "unspecified"),
    ("http://192.0.0.8/", "IETF protocol assignments"),
    ("http://192.0.2.1/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"),
    ("http://192.88.99.1/", "6to4 relay"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    # legacy numeric IPv4 forms that inet_aton (and so a resolver) accepts
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0xa9.254.0251.0xfe/", "link-local"),
    ("http://3232235777/", "private"),
    ("http://0/", "unspecified"),
    ("http://①②⑦.0.0.1/", "loopback"),  # IDNA maps these digits to ASCII
    ("http://127。0。0。1/", "loopback"),  # ideographic full stops
    # IPv6
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fc00::1]/", "unique local"),
    ("http://[fd12:3456:789a::1]/", "unique local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[3fff::1]/", "documentation"),
    ("http://[100::1]/", "discard-only"),
    ("http://[2001:10::1]/", "ORCHID"),
    ("http://[2001:2::1]/", "benchmarking"),
    ("http://[4000::1]/", "reserved"),
    ("http://[2606:4700:4700::1111%25eth0]/", "zone id"),
    # IPv6 forms that embed a private IPv4 address
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1 (loopback)"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1 (loopback)"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped form of 169.254.169.254 (link-local)"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped form of 10.0.0.1 (private)"),
    ("http://[::127.0.0.1]/", "IPv4-compatible (deprecated) form of 127.0.0.1"),
    ("http://[::ffff:0:7f00:1]/", "IPv4-translated form of 127.0.0.1"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1 (loopback)"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254 (link-local)"),
    ("http://[64:ff9b:1::a00:1]/", "NAT64 (local use)"),
    ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1 (loopback)"),
    ("http://[2002:c0a8:101::1]/", "6to4 form of 192.168.1.1 (private)"),
    # Teredo stores the client address XOR-ed with all ones: 80ff:fffe is 127.0.0.1
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo form of 127.0.0.1 (loopback)"),
    ("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "Teredo form of 10.0.0.1 (private)"),
    ("http://[2001:4860::5efe:7f00:1]/", "ISATAP form of 127.0.0.1 (loopback)"),
    ("http://[2001:4860::200:5efe:a9fe:a9fe]/", "ISATAP form of 169.254.169.254"),
]


@pytest.mark.parametrize(("url", "why"), SSRF_VECTORS)
def test_ssrf_vector_is_refused(url: str, why: str) -> None:
    exc = refusal(url)
    assert isinstance(exc, BlockedAddress)
    assert (exc.status, exc.code) == (403, "blocked_address")
    assert why in exc.reason
    assert "is refused" in exc.message


def test_there_are_at_least_forty_vectors() -> None:
    assert len(SSRF_VECTORS) >= 40


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",
        "https://1.1.1.1/dns-query",
        "http://8.8.8.8:8080/",
        "http://100.63.255.255/",  # just below CGNAT
        "http://100.128.0.0/",  # just above CGNAT
        "http://172.15.255.255/",
        "http://172.32.0.0/",
        "http://[2606:4700:4700::1111]/",
        "https://[2001:4860:4860::8888]:443/",
        "http://[2001:4860::5efe:808:808]/",  # ISATAP form of a public address
        "http://example.org/index.html",  # names are checked once resolved, by the fetcher
        "https://xn--nxasmq6b.example/",
    ],
)
def test_public_origins_pass(url: str) -> None:
    check_origin_url(parse_origin_url(url), allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://10.1.2.3/",
        "http://[::1]:9000/",
        "http://[fe80::1%25lo]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://169.254.169.254/",
        "http://127.0.0.1:22/",  # the port rule is lifted too
        "http://127.0.0.1:6379/",
    ],
)
def test_allow_private_lifts_the_private_rules(url: str) -> None:
    check_origin_url(parse_origin_url(url), allow_private=True)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.251/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://[::ffff:0.0.0.0]/", "IPv4-mapped form of 0.0.0.0 (unspecified"),
        ("http://[4000::1]/", "reserved"),
    ],
)
def test_allow_private_still_refuses_what_is_never_an_origin(url: str, why: str) -> None:
    exc = refusal(url, allow_private=True)
    assert isinstance(exc, BlockedAddress)
    assert why in exc.reason


def test_non_canonical_ipv4_is_a_bad_url_even_when_allowed() -> None:
    exc = refusal("http://2130706433/", allow_private=True)
    assert isinstance(exc, BadUrl)
    assert "127.0.0.1" in exc.message


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "[::1]", "10.0.0.1", "fe80::1%eth0", "::ffff:192.168.0.1"],
)
def test_check_address_takes_resolver_output(address: str) -> None:
    with pytest.raises(BlockedAddress):
        check_address(address, allow_private=False)


def test_check_address_takes_address_objects() -> None:
    with pytest.raises(BlockedAddress, match="loopback"):
        check_address(IPv4Address("127.0.0.1"), allow_private=False)
    with pytest.raises(BlockedAddress, match="loopback"):
        check_address(IPv6Address("::1"), allow_private=False)
    check_address(IPv4Address("1.1.1.1"), allow_private=False)


def test_check_address_refuses_what_is_not_an_address() -> None:
    with pytest.raises(BlockedAddress, match="not an IP address"):
        check_address("example.org", allow_private=False)


@pytest.mark.parametrize("port", [80, 443, 1024, 3000, 8000, 8080, 8443, 32768, 65535])
def test_web_ports_pass(port: int) -> None:
    check_port(port, allow_private=False)


@pytest.mark.parametrize(
    "port", [21, 22, 23, 25, 53, 110, 143, 389, 445, 587, 636, 993, 1023, *DENIED_PORTS]
)
def test_other_service_ports_are_refused(port: int) -> None:
    with pytest.raises(BlockedAddress, match=f"port {port} is refused"):
        check_port(port, allow_private=False)
    check_port(port, allow_private=True)


@pytest.mark.parametrize("allow_private", [False, True])
def test_port_zero_is_never_fetched(allow_private: bool) -> None:
    with pytest.raises(BlockedAddress, match="not a valid TCP port"):
        check_port(0, allow_private=allow_private)


def test_denied_ports_never_meet_ephemeral_ports() -> None:
    assert max(DENIED_PORTS) < 32768


def test_url_port_is_checked() -> None:
    exc = refusal("http://1.1.1.1:6379/")
    assert isinstance(exc, BlockedAddress)
    assert "Redis" in exc.reason


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/file", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("//example.org/", "scheme ''"),
        ("/relative/path", "scheme ''"),
        ("http://user:secret@example.org/", "user info"),
        ("http://user@example.org/", "user info"),
        ("http://@example.org/", "user info"),
        ("http:///path", "no host"),
        ("http://exa mple.org/", "whitespace"),
        ("http://example.org/\nHost: evil", "whitespace"),
        ("http://127.0.0.1\t/", "whitespace"),
        ("http://ex%61mple.org/", "not a valid host name"),
        ("http://exa_mple!.org/", "not a valid host name"),
        ("http://[v1.fe]/", "not a valid host name"),
        ("http://[::1/", "does not parse"),
        ("http://example.org:99999/", "does not parse"),
        ("http://example.123/", "not an IPv4 address"),
        ("http://1.2.3.4.5/", "not an IPv4 address"),
        ("http://08.0.0.1/", "not a valid IPv4 address"),
        ("http://256.1.1.1/", "out of the IPv4 range"),
        ("http://4294967296/", "out of the IPv4 range"),
    ],
)
def test_bad_urls(url: str, why: str) -> None:
    exc = refusal(url)
    assert isinstance(exc, BadUrl)
    assert (exc.status, exc.code) == (400, "bad_url")
    assert why in exc.message


def test_over_long_url() -> None:
    url = "http://example.org/" + "a" * MAX_URL_LENGTH
    with pytest.raises(BadUrl, match="limit 8192"):
        parse_origin_url(url)
    parse_origin_url(url[:MAX_URL_LENGTH])


def test_parse_keeps_what_the_origin_needs_and_drops_the_fragment() -> None:
    url = parse_origin_url("HTTPS://Example.ORG:8443/a%20b?q=1#frag")
    assert str(url) == "https://example.org:8443/a%20b?q=1"
    assert url.port == 8443


def test_refusals_become_json_problems() -> None:
    exc = refusal("http://[::ffff:127.0.0.1]/")
    problem = exc.problem()
    assert problem["status"] == 403
    assert problem["type"] == "https://atlas.invalid/problems/blocked_address"
    assert "127.0.0.1" in str(problem["detail"])


HOSTISH = st.text(alphabet="0123456789abcdefx.:[]%@/#?", max_size=40)


@given(
    st.one_of(
        st.text(max_size=80),
        st.text(max_size=60).map(lambda t: f"http://{t}"),
        HOSTISH.map(lambda t: f"http://{t}/"),
        HOSTISH.map(lambda t: f"https://[{t}]/"),
    )
)
def test_any_input_is_parsed_or_refused_with_our_errors(url: str) -> None:
    for allow_private in (False, True):
        with contextlib.suppress(BadUrl, BlockedAddress):
            check_origin_url(parse_origin_url(url), allow_private=allow_private)
