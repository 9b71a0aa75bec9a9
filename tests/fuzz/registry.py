"""Every fuzz target, registered by importing the modules that define them."""

from __future__ import annotations

from tests.fuzz import targets_decoding, targets_edge, targets_http, targets_protocol
from tests.fuzz.target import TARGETS, Target

MODULES = (targets_protocol, targets_decoding, targets_edge, targets_http)


def all_targets() -> dict[str, Target]:
    return dict(TARGETS)
