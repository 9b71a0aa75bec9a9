"""The SDK's public API (requester/__init__.py): exactly these names, each the object its
module defines, and ``import requester`` without the command line or a web server."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import requester

PUBLIC = [
    "BTT_LOCAL",
    "AtlasClient",
    "AtlasError",
    "Budget",
    "ChannelManager",
    "ConfigError",
    "ContentFailedAtOrigin",
    "Download",
    "EdgeUnavailable",
    "FetchRefused",
    "KeystoreError",
    "Ledger",
    "LedgerClient",
    "LedgerError",
    "NoProvidersLeft",
    "PayerStore",
    "Progress",
    "ProtocolError",
    "Refusal",
    "SdkError",
    "Settings",
    "SpendLimitReached",
    "TorrentListing",
    "format_amount",
    "load_settings",
    "open_ledger",
    "parse_amount",
]


def test_the_public_names_are_exactly_these() -> None:
    """A name added to (or dropped from) the API is a decision: change this list with it."""
    assert requester.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_its_modules_own(name: str) -> None:
    value = getattr(requester, name)
    home = importlib.import_module(requester._HOMES[name])
    assert value is getattr(home, name)
    assert name in dir(requester)


def test_every_error_is_an_atlas_error() -> None:
    errors = [getattr(requester, n) for n in PUBLIC if n.endswith(("Error", "Reached"))]
    errors += [requester.TorrentListing, requester.FetchRefused, requester.EdgeUnavailable,
               requester.NoProvidersLeft, requester.ContentFailedAtOrigin]  # fmt: skip
    assert all(issubclass(e, requester.AtlasError) for e in errors)


def test_a_name_outside_the_api_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'ChunkClient'"):
        _ = requester.ChunkClient


def test_importing_the_sdk_loads_no_command_line_and_no_server() -> None:
    """``import requester`` runs for every ``import requester.protocol`` too (the edge's, the
    fuzz targets'): it must stay the library's, and cheap."""
    code = (
        "import json, sys, requester\n"
        "from requester import AtlasClient, AtlasError, Settings\n"
        "unwanted = ('click', 'requester.cli', 'launcher', 'cdn_edge', 'proxy', 'aiohttp.web')\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                        if any(m == u or m.startswith(u + '.') for u in unwanted))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_importing_the_package_alone_loads_none_of_its_modules() -> None:
    code = (
        "import json, sys, requester\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('requester.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
