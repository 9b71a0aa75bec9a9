"""Shared-cache rules (RFC 9111) the edge applies to origin responses."""

from __future__ import annotations

import pytest

from cdn_edge.content.http_cache import cache_control, cache_key, conditional_headers, policy

NOW = 1_800_000_000.0
DATE = "Fri, 15 Jan 2027 08:00:00 GMT"


def test_directives_are_parsed_case_insensitively_with_quotes() -> None:
    cc = cache_control([("Cache-Control", 'Max-Age=60, no-cache="set-cookie", public')])
    assert cc == {"max-age": "60", "no-cache": "set-cookie", "public": None}


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ([("Cache-Control", "max-age=60")], 60),
        ([("Cache-Control", "max-age=60, s-maxage=600")], 600),
        ([("Cache-Control", "no-cache, max-age=60")], 0),
        ([("Cache-Control", "max-age=abc")], 0),
        ([("Date", DATE), ("Expires", "Fri, 15 Jan 2027 09:00:00 GMT")], 3600),
        ([("Date", DATE), ("Expires", "0")], 0),
        ([("Date", DATE), ("Last-Modified", "Fri, 15 Jan 2027 07:00:00 GMT")], 360),
        ([("Date", DATE), ("Last-Modified", "Fri, 01 Jan 2010 00:00:00 GMT")], 86400),
        ([], 0),
    ],
)
def test_freshness_lifetime(headers: list[tuple[str, str]], lifetime: float) -> None:
    assert policy(200, {}, headers, NOW).fresh_until == pytest.approx(NOW + lifetime)


@pytest.mark.parametrize(
    ("status", "request_headers", "response_headers", "storable"),
    [
        (200, {}, [("Cache-Control", "max-age=60")], True),
        (200, {}, [("Cache-Control", "no-store")], False),
        (200, {}, [("Cache-Control", "private, max-age=60")], False),
        (200, {}, [("Vary", "*")], False),
        (206, {}, [], False),
        (500, {}, [], False),
        (500, {}, [("Cache-Control", "max-age=5")], True),
        (404, {}, [], True),
        (200, {"Authorization": "x"}, [("Cache-Control", "max-age=60")], False),
        (200, {"Authorization": "x"}, [("Cache-Control", "public, max-age=60")], True),
        (200, {"Authorization": "x"}, [("Cache-Control", "s-maxage=60")], True),
    ],
)
def test_what_a_shared_cache_may_store(
    status: int, request_headers: dict[str, str], response_headers: list[tuple[str, str]],
    storable: bool,
) -> None:  # fmt: skip
    assert policy(status, request_headers, response_headers, NOW).storable is storable


def test_vary_selects_request_headers_for_the_key() -> None:
    vary = policy(200, {}, [("Vary", "Accept-Language, accept-encoding")], NOW).vary
    assert vary == ("accept-encoding", "accept-language")
    url = "http://example.org/"
    en = cache_key(url, vary, {"Accept-Language": "en"})
    assert en == cache_key(url, vary, {"accept-language": "en", "user-agent": "other"})
    assert en != cache_key(url, vary, {"Accept-Language": "fr"})
    assert cache_key(url, (), {"Accept-Language": "fr"}) == cache_key(url, (), {})


def test_validators_become_conditional_headers() -> None:
    p = policy(200, {}, [("ETag", '"v1"'), ("Last-Modified", DATE)], NOW)
    assert p.revalidatable
    assert conditional_headers(p) == {"If-None-Match": '"v1"', "If-Modified-Since": DATE}
    assert not policy(200, {}, [], NOW).revalidatable
