"""``--header-timeout`` and ``--max-connections-per-address``: the command-line side of
:mod:`requester.listener_limits`, shared by every server command (edge, ledger, proxy)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from requester.listener_limits import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_PER_ADDRESS,
    HEADER_TIMEOUT_ENV,
    MAX_PER_ADDRESS_ENV,
    ListenerLimits,
)

F = TypeVar("F", bound=Callable[..., Any])


def listener_options(command: F) -> F:
    """Adds ``--header-timeout`` and ``--max-connections-per-address`` to a server command;
    it receives them as one ``listener_limits: ListenerLimits`` argument."""

    @functools.wraps(command)
    def wrapper(*args: Any, header_timeout: float, max_connections_per_address: int,
                **kwargs: Any) -> Any:  # fmt: skip
        limits = ListenerLimits(header_timeout, max_connections_per_address)
        return command(*args, listener_limits=limits, **kwargs)

    with_cap = click.option(
        "--max-connections-per-address", default=DEFAULT_MAX_PER_ADDRESS, show_default=True,
        type=click.IntRange(1), envvar=MAX_PER_ADDRESS_ENV,
        help="connections one address (IPv4, IPv6 /64) may hold open; more are closed",
    )(wrapper)  # fmt: skip
    with_timeout = click.option(
        "--header-timeout", default=DEFAULT_HEADER_TIMEOUT, show_default=True,
        type=click.FloatRange(min=0.1), envvar=HEADER_TIMEOUT_ENV,
        help="seconds a client has to send a whole request head",
    )(with_cap)  # fmt: skip
    return with_timeout  # type: ignore[return-value]
