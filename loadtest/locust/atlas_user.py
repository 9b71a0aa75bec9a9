"""The base of every user: where the network under test listens (``atlas up``'s JSON line
and the origin, from the environment, not ``--host``) and the ``ATLAS_LT_*`` settings; and
the per-scenario figures (a request's scenario is its name up to the colon), written as JSON
to ``ATLAS_LT_SCENARIOS_JSON`` when locust quits: its own CSV has them per request name, and
no failure kinds. Locust's entries are merged per scenario; failure kinds counted here."""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from locust import FastHttpUser, events
from locust.env import Environment
from locust.stats import StatsEntry

from tests.origin_server import pattern

MIB = 1 << 20
VIDEO_SIZE = 20 * MIB
"""``/site/video.bin`` of ``tests/origin_server.py``."""
SITE_ASSETS = ("/site/style.css", "/site/app.js", "/site/pixel.svg")
CACHED_ITEMS = tuple(f"/cached/item-{i:02d}" for i in range(40))
KINDS: dict[str, Counter[str]] = {}


@dataclass(frozen=True, slots=True)
class Targets:
    """Base URLs (the proxy's as an HTTP proxy; its mobile API's, which also serves its
    ``/metrics`` to ``api_token``), from ``atlas up``'s line, and the origin's."""

    proxy: str
    api: str
    api_token: str
    edges: tuple[str, ...]
    ledger: str
    origin: str


@functools.cache
def load_targets() -> Targets:
    """From ``ATLAS_UP_JSON`` (``atlas up``'s line, or a file holding it) and ``ATLAS_ORIGIN``."""
    up_json, origin = os.environ.get("ATLAS_UP_JSON", ""), os.environ.get("ATLAS_ORIGIN", "")
    if not (up_json and origin):
        raise ValueError("set ATLAS_UP_JSON (atlas up's line or its file) and ATLAS_ORIGIN")
    text = up_json if up_json.lstrip().startswith("{") else Path(up_json).read_text("utf-8")
    up: dict[str, Any] = json.loads(text)
    return Targets(
        proxy=str(up["proxy"]).rstrip("/"), api=str(up["api"]).rstrip("/"),
        api_token=str(up["api_token"]), edges=tuple(str(e).rstrip("/") for e in up["edges"]),
        ledger=str(up["ledger"]).rstrip("/"), origin=origin.rstrip("/"),
    )  # fmt: skip


def setting(name: str, default: float) -> float:
    """A number from the environment (``ATLAS_LT_...``), or ``default``."""
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def think_time(name: str, default: tuple[float, float]) -> tuple[float, float]:
    """``NAME="a,b"`` (or ``"a"``) from the environment: a think-time range in seconds."""
    low, _, high = os.environ.get(name, "").partition(",")
    return (float(low), float(high or low)) if low.strip() else default


class AtlasUser(FastHttpUser):
    """A user of one scenario: each request's name starts with ``scenario: ``."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0
    scenario: ClassVar[str] = "atlas"
    through_proxy: ClassVar[bool] = False
    """Ask the origin through the Atlas proxy, as a browser set to use it would."""

    def __init__(self, environment: Environment) -> None:
        self.targets = load_targets()
        if self.through_proxy:
            proxy = urlsplit(self.targets.proxy)
            self.proxy_host, self.proxy_port = proxy.hostname, proxy.port
        self.host = self.base_url(self.targets)
        super().__init__(environment)

    def base_url(self, t: Targets) -> str:
        return t.origin

    def name(self, what: str) -> str:
        return f"{self.scenario}: {what}"

    def get_object(self, path: str, what: str, size: int | None = None, via: bool = True) -> None:
        """GET ``path`` and check a whole 200 answer (through Atlas when ``via``; the first
        bytes of the origin's pattern when ``size`` is given)."""
        with self.client.get(path, name=self.name(what), catch_response=True) as resp:
            body = resp.content or b""
            length = resp.headers.get("Content-Length") if resp.headers else None
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {body[:120]!r}")
            elif via and "atlas" not in (resp.headers.get("Via") or ""):
                resp.failure("answer did not come through Atlas (no Via: 1.1 atlas)")
            elif length is None or int(length) != len(body):
                resp.failure(f"short body: {len(body)} of Content-Length {length}")
            elif size is not None and (len(body) != size or body[:32] != pattern(0, 32)):
                resp.failure(f"wrong body: {len(body)} bytes, want {size} of the pattern")
            else:
                resp.success()


def scenario_of(name: str) -> str:
    return name.split(":", 1)[0].strip() or "other"


def failure_kind(status: int, retry_after: bool, exception: BaseException) -> str:
    """How a failed request failed: ``shed`` (429/503 with Retry-After: the right answer to
    overload), ``timeout``, ``connection`` or ``http <status>``/``check``."""
    if status in (429, 503) and retry_after:
        return "shed"
    name, text = type(exception).__name__.lower(), str(exception).lower()
    if "timeout" in name or "timed out" in text or "timeout" in text:
        return "timeout"
    if status == 0:
        return "connection"
    return f"http {status}" if status >= 400 else "check"


def _record(name: str, response: Any = None, exception: BaseException | None = None,
            **_: Any) -> None:  # fmt: skip
    if exception is not None:
        status = int(getattr(response, "status_code", 0) or 0)
        headers = getattr(response, "headers", None)
        kind = failure_kind(status, bool(headers and headers.get("Retry-After")), exception)
        KINDS.setdefault(scenario_of(name), Counter())[kind] += 1


def _restart(**_: Any) -> None:
    """At ``--reset-stats`` (all users running), as locust resets its own."""
    KINDS.clear()


def _write(environment: Environment, **_: Any) -> None:
    if not (path := os.environ.get("ATLAS_LT_SCENARIOS_JSON")):
        return
    merged: dict[str, StatsEntry] = {}
    for entry in environment.stats.entries.values():
        name = scenario_of(entry.name)
        merged.setdefault(name, StatsEntry(environment.stats, name, "")).extend(entry)
    scenarios = {
        name: {
            "requests": e.num_requests, "failures": e.num_failures,
            "failure_kinds": dict(KINDS.get(name, {})),
            "rps": e.total_rps, "max_ms": e.max_response_time, "bytes": e.total_content_length,
            **{f"p{q}_ms": e.get_response_time_percentile(q / 100) for q in (50, 95, 99)},
        }
        for name, e in sorted(merged.items())
    }  # fmt: skip
    Path(path).write_text(json.dumps({"scenarios": scenarios}, indent=1), encoding="utf-8")


for hook, listener in [(events.request, _record), (events.reset_stats, _restart),
                       (events.quitting, _write)]:  # fmt: skip
    hook.add_listener(listener)  # type: ignore[no-untyped-call]
