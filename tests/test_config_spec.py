"""Settings declared once (requester/settings_spec.py): names, units, precedence, sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from requester.protocol import BTT_LOCAL
from requester.setting_units import (
    BTT,
    BTT_OR_NONE,
    MIB,
    MIB_SIZE,
    SECONDS,
    SWITCH,
    TEXT,
    WHOLE,
)
from requester.settings_spec import (
    ConfigFile,
    InvalidSetting,
    Origin,
    Source,
    collect,
    describe,
    resolve,
    setting,
    specs,
)


@dataclass(frozen=True)
class Example:
    url: str = setting(help="where")
    price: int = setting(BTT_LOCAL.one // 1000, BTT, "price per MiB")
    free_mib: int = setting(4 * MIB, MIB_SIZE, "free allowance")
    wait: float = setting(30.0, SECONDS, "wait", minimum=0.1)
    tracker: tuple[str, ...] = setting((), TEXT, "tracker", multiple=True, config_key="trackers")
    limit: int | None = setting(5 * BTT_LOCAL.one, BTT_OR_NONE, "limit", config_key="limit")
    on: bool = setting(False, SWITCH, "switch", env="ATLAS_TURN_ON")
    count: int = setting(2, WHOLE, "count", flag=False, minimum=0)
    internal: int = 7


def test_names_are_spelled_from_the_field() -> None:
    declared = {s.name: s for s in specs(Example)}
    assert "internal" not in declared
    assert (declared["free_mib"].flag, declared["free_mib"].env) == ("--free-mib", "ATLAS_FREE_MIB")
    assert declared["on"].env == "ATLAS_TURN_ON"
    assert declared["count"].flag is None
    assert declared["url"].required and not declared["price"].required


def test_values_are_held_in_base_units_and_shown_in_their_unit() -> None:
    env = {"ATLAS_URL": "u", "ATLAS_FREE_MIB": "1.5", "ATLAS_PRICE": "0.002", "ATLAS_LIMIT": "none"}
    resolved = resolve(Example, environ=env)
    settings = resolved.settings
    assert settings.free_mib == MIB * 3 // 2 and settings.price == 2 * BTT_LOCAL.one // 1000
    assert settings.limit is None and settings.internal == 7
    rows = {r["name"]: r for r in describe(Example, collect(Example, environ={"ATLAS_URL": "u"}))}
    assert rows["price"]["value"] == "0.001 BTT" and rows["free_mib"]["value"] == "4 MiB"
    assert rows["wait"]["value"] == "30 s" and rows["limit"]["value"] == "5 BTT"
    assert rows["tracker"]["value"] == "none"


def test_flag_beats_environment_beats_config_file_beats_default(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "config.json", {"trackers": ["a", "b"], "limit": 2, "url": "f"})
    found = collect(
        Example,
        given={"url": ("http://flag", Origin(Source.FLAG, "--url"))},
        environ={"ATLAS_URL": "http://env", "ATLAS_LIMIT": "3", "ATLAS_WAIT": ""},
        config=config,
    )
    assert found.values["url"] == "http://flag" and str(found.origins["url"]) == "flag --url"
    assert found.values["limit"] == 3 * BTT_LOCAL.one
    assert str(found.origins["limit"]) == "environment ATLAS_LIMIT"
    assert found.values["tracker"] == ("a", "b")
    assert str(found.origins["tracker"]) == f"config file {tmp_path / 'config.json'}"
    assert found.values["wait"] == 30.0 and found.origins["wait"].source is Source.DEFAULT


def test_bad_text_names_the_setting_and_where_it_was(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match=r"ATLAS_PRICE: not an amount"):
        resolve(Example, environ={"ATLAS_URL": "u", "ATLAS_PRICE": "lots"})
    with pytest.raises(InvalidSetting, match=r"ATLAS_WAIT: '0' is below 0.1 s"):
        resolve(Example, environ={"ATLAS_URL": "u", "ATLAS_WAIT": "0"})
    bad = ConfigFile(tmp_path / "c.json", {"limit": "x"})
    with pytest.raises(InvalidSetting, match=r"c.json limit: not an amount"):
        resolve(Example, environ={"ATLAS_URL": "u"}, config=bad)
    with pytest.raises(InvalidSetting, match="url is required: pass --url or ATLAS_URL"):
        resolve(Example)
