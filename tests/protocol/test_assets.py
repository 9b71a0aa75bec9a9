"""Assets and exact decimal amounts: no float ever touches an amount."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    ASSETS,
    BTT,
    BTT_LEGACY,
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    TRON_MAINNET_CHAIN_ID,
    Asset,
    AssetCode,
    MalformedMessage,
    asset_by_code,
    format_amount,
    parse_amount,
)
from requester.protocol.codec import U128_MAX

ALL_ASSETS = [BTT, BTT_LEGACY, BTT_LOCAL]
EXACT = Context(prec=200)


def test_asset_table() -> None:
    assert ASSETS == {
        AssetCode.BTT: BTT,
        AssetCode.BTT_LEGACY: BTT_LEGACY,
        AssetCode.BTT_LOCAL: BTT_LOCAL,
    }
    assert [int(a.code) for a in ALL_ASSETS] == [1, 2, 3]
    assert (BTT.decimals, BTT_LEGACY.decimals, BTT_LOCAL.decimals) == (18, 6, 18)
    assert BTT.uri == "tron:trc20:TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4"
    assert BTT_LEGACY.uri == "tron:trc10:1002000"
    assert BTT_LOCAL.uri == "atlas:local:BTT"
    assert BTT.chain_id == BTT_LEGACY.chain_id == TRON_MAINNET_CHAIN_ID == 0x2B6653DC
    assert BTT_LOCAL.chain_id == LOCAL_CHAIN_ID == int.from_bytes(b"ATLS", "big")
    assert BTT.one == 10**18
    assert BTT_LEGACY.one == 10**6
    assert BTT_LEGACY.symbol == "BTTOLD"


@pytest.mark.parametrize("asset", ALL_ASSETS)
def test_asset_by_code(asset: Asset) -> None:
    assert asset_by_code(int(asset.code)) is asset


@pytest.mark.parametrize("code", [0, 4, 255, -1])
def test_unknown_asset_code(code: int) -> None:
    with pytest.raises(MalformedMessage, match=f"unknown asset code {code}"):
        asset_by_code(code)


@pytest.mark.parametrize(
    ("text", "asset", "units"),
    [
        ("0", BTT, 0),
        ("1", BTT, 10**18),
        ("1.5", BTT, 15 * 10**17),
        ("0.000000000000000001", BTT, 1),
        ("1.500000000000000000000", BTT, 15 * 10**17),
        ("1.5 BTT", BTT, 15 * 10**17),
        ("1.5btt", BTT_LOCAL, 15 * 10**17),
        ("  2 BTT ", BTT, 2 * 10**18),
        ("1_000", BTT_LEGACY, 10**9),
        ("0.000125 BTTOLD", BTT_LEGACY, 125),
        ("0.000125 bttold", BTT_LEGACY, 125),
    ],
)
def test_parse_amount_examples(text: str, asset: Asset, units: int) -> None:
    assert parse_amount(text, asset) == units


@pytest.mark.parametrize(
    ("units", "asset", "text"),
    [
        (0, BTT, "0 BTT"),
        (1, BTT, "0.000000000000000001 BTT"),
        (10**18, BTT, "1 BTT"),
        (15 * 10**17, BTT_LOCAL, "1.5 BTT"),
        (125, BTT_LEGACY, "0.000125 BTTOLD"),
        (-125, BTT_LEGACY, "-0.000125 BTTOLD"),
        (U128_MAX, BTT, "340282366920938463463.374607431768211455 BTT"),
    ],
)
def test_format_amount_examples(units: int, asset: Asset, text: str) -> None:
    assert format_amount(units, asset) == text


@pytest.mark.parametrize(
    ("text", "asset", "message"),
    [
        ("1.0000001", BTT_LEGACY, "more than 6 decimals, the precision of BTTOLD"),
        ("0.0000000000000000001", BTT, "more than 18 decimals"),
        ("", BTT, "not an amount"),
        ("-1", BTT, "not an amount"),
        ("+1", BTT, "not an amount"),
        (".5", BTT, "not an amount"),
        ("1.", BTT, "not an amount"),
        ("1e3", BTT, "not an amount"),
        ("1,5", BTT, "not an amount"),
        ("inf", BTT, "not an amount"),
        ("nan", BTT, "not an amount"),
        ("1.5 TRX", BTT, "not an amount"),
        ("\u0661", BTT, "not an amount"),  # Arabic-Indic one: int() would take it
        ("1" * 41, BTT_LEGACY, "not an amount"),
        ("340282366920938463463.374607431768211456", BTT, "too large"),
    ],
)
def test_parse_amount_refuses(text: str, asset: Asset, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        parse_amount(text, asset)


def test_parse_amount_max() -> None:
    assert parse_amount("340282366920938463463.374607431768211455", BTT) == U128_MAX


@settings(max_examples=300)
@given(st.sampled_from(ALL_ASSETS), st.integers(0, U128_MAX))
def test_format_then_parse_is_identity(asset: Asset, units: int) -> None:
    text = format_amount(units, asset)
    assert text.endswith(f" {asset.symbol}")
    assert parse_amount(text, asset) == units
    assert parse_amount(text.removesuffix(f" {asset.symbol}"), asset) == units


@settings(max_examples=200)
@given(st.sampled_from(ALL_ASSETS), st.integers(-(10**30), -1))
def test_format_negative_is_minus_of_positive(asset: Asset, units: int) -> None:
    assert format_amount(units, asset) == "-" + format_amount(-units, asset)


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    whole = draw(st.text("0123456789", min_size=1, max_size=42))
    frac = draw(st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=42)))
    return whole if frac is None else f"{whole}.{frac}"


@settings(max_examples=500)
@given(st.sampled_from(ALL_ASSETS), decimal_texts(), st.sampled_from(["", " ", "{sym}", " {sym}"]))
def test_parse_matches_exact_decimal_arithmetic(asset: Asset, number: str, suffix: str) -> None:
    text = number + suffix.format(sym=asset.symbol.lower())
    expected = EXACT.multiply(Decimal(number), Decimal(asset.one))
    whole_digits, _, frac_digits = number.partition(".")
    well_formed = len(whole_digits) <= 40 and len(frac_digits) <= 40
    if not well_formed or expected != expected.to_integral_value() or expected > U128_MAX:
        with pytest.raises(MalformedMessage):
            parse_amount(text, asset)
    else:
        assert parse_amount(text, asset) == int(expected)


@settings(max_examples=500)
@given(st.text(max_size=60), st.sampled_from(ALL_ASSETS))
def test_parse_amount_only_raises_malformed(text: str, asset: Asset) -> None:
    try:
        units = parse_amount(text, asset)
    except MalformedMessage:
        return
    assert 0 <= units <= U128_MAX
    assert parse_amount(format_amount(units, asset), asset) == units
