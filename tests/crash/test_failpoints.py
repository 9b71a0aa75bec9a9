"""The failpoint spec, and the registry of points against the code that reaches them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from requester.failpoints import ENV, POINTS, parse

ROOT = Path(__file__).resolve().parents[2]


def test_a_spec_arms_points_at_counts() -> None:
    assert parse("") == {}
    assert parse(" edge.voucher_accepted=3, settle.redeem_sent=1,") == {
        "edge.voucher_accepted": 3,
        "settle.redeem_sent": 1,
    }


@pytest.mark.parametrize(
    "spec", ["edge.voucher_acepted=1", "edge.voucher_accepted", "settle.redeem_sent=0",
             "settle.redeem_sent=-1", "settle.redeem_sent=x", "=2"],
)  # fmt: skip
def test_a_wrong_spec_is_refused_not_ignored(spec: str) -> None:
    with pytest.raises(ValueError, match=ENV):
        parse(spec)


def test_every_point_is_reached_in_the_code_and_none_is_unlisted() -> None:
    called = {
        name
        for package in ("requester", "cdn_edge")
        for path in (ROOT / package).rglob("*.py")
        for name in re.findall(r'reached\("([^"]+)"\)', path.read_text())
    }
    assert called == POINTS
