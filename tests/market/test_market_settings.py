"""The market's settings: rates as written, and slot counts that cannot work refused."""

from __future__ import annotations

import pytest

from cdn_edge.config import EdgeConfig
from requester.setting_units import RATE
from requester.settings_spec import InvalidSetting, resolve

MIB = 1 << 20
BASE = {"ATLAS_DATA_DIR": "/tmp/nowhere", "ATLAS_LEDGER": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("text", "value"),
    [("8MiB/s", 8 * MIB), ("512KiB/s", 512 * 1024), ("1.5GiB/s", 3 * 512 * MIB),
     ("4 MiB/s", 4 * MIB), ("1000", 1000), ("0", 0)],
)  # fmt: skip
def test_a_rate_reads_as_bytes_per_second_and_shows_back(text: str, value: int) -> None:
    assert RATE.parse(text) == value
    assert RATE.parse(RATE.text(value)) == value


@pytest.mark.parametrize("text", ["fast", "-1MiB/s", "MiB/s", "nan", "inf", ""])
def test_what_is_not_a_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        RATE.parse(text)


def test_the_market_settings_resolve_and_the_reserve_is_the_price() -> None:
    env = {**BASE, "ATLAS_UPLOAD_CAPACITY": "8MiB/s", "ATLAS_SLOTS": "4",
           "ATLAS_FREE_SLOTS": "1", "ATLAS_ROUND_SECONDS": "2", "ATLAS_PRICE": "1"}  # fmt: skip
    config = resolve(EdgeConfig, environ=env).settings
    assert (config.upload_capacity, config.slots, config.free_slots) == (8 * MIB, 4, 1)
    assert config.round_seconds == 2.0 and config.price == 10**18
    assert resolve(EdgeConfig, environ=BASE).settings.upload_capacity == 0  # no market


@pytest.mark.parametrize(
    ("env", "why"),
    [({"ATLAS_SLOTS": "2", "ATLAS_FREE_SLOTS": "3"}, "cannot exceed --slots"),
     ({"ATLAS_FREE_SLOTS": "0"}, "below 1"), ({"ATLAS_SLOTS": "0"}, "below 1"),
     ({"ATLAS_ROUND_SECONDS": "0"}, "below 0.1")],
)  # fmt: skip
def test_slot_counts_that_cannot_work_are_refused(env: dict[str, str], why: str) -> None:
    with pytest.raises(InvalidSetting, match=why):
        resolve(EdgeConfig, environ={**BASE, **env})
