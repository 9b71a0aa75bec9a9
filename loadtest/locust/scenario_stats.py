"""Per-scenario figures (a request's scenario is its name up to the colon), written as JSON
to ``ATLAS_LT_SCENARIOS_JSON`` when locust quits: its own CSV has them per request name, and
no failure kinds. Locust's entries are merged per scenario; kinds and statuses counted here."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.stats import StatsEntry

KINDS: dict[str, Counter[str]] = {}
STATUSES: dict[str, Counter[str]] = {}


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
    status = int(getattr(response, "status_code", 0) or 0)
    STATUSES.setdefault(scenario_of(name), Counter())[str(status)] += 1
    if exception is not None:
        headers = getattr(response, "headers", None)
        kind = failure_kind(status, bool(headers and headers.get("Retry-After")), exception)
        KINDS.setdefault(scenario_of(name), Counter())[kind] += 1


def _restart(**_: Any) -> None:
    """At ``--reset-stats`` (all users running), as locust resets its own."""
    KINDS.clear()
    STATUSES.clear()


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
            "failure_kinds": dict(KINDS.get(name, {})), "statuses": dict(STATUSES.get(name, {})),
            "rps": e.total_rps, "max_ms": e.max_response_time, "bytes": e.total_content_length,
            **{f"p{q}_ms": e.get_response_time_percentile(q / 100) for q in (50, 95, 99)},
        }
        for name, e in sorted(merged.items())
    }  # fmt: skip
    Path(path).write_text(json.dumps({"scenarios": scenarios}, indent=1), encoding="utf-8")


for hook, listener in [(events.request, _record), (events.reset_stats, _restart),
                       (events.quitting, _write)]:  # fmt: skip
    hook.add_listener(listener)  # type: ignore[no-untyped-call]
