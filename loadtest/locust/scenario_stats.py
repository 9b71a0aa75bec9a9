"""Per-scenario statistics kept inside locust (a request's scenario is its name up to the
colon) and written as JSON at exit for the orchestrator: locust's own CSV has them per
request name only, and no failure kinds."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def failure_kind(status: int, retry_after: bool, exception: BaseException | None) -> str:
    """How a failed request failed: ``shed`` (429/503 with Retry-After: the right answer to
    overload), ``timeout``, ``connection`` or ``http <status>``/``check``."""
    if status in (429, 503) and retry_after:
        return "shed"
    if exception is not None:
        name, text = type(exception).__name__.lower(), str(exception).lower()
        if "timeout" in name or "timed out" in text or "timeout" in text:
            return "timeout"
        if status == 0:
            return "connection"
    return f"http {status}" if status >= 400 else "check"


class ScenarioStats:
    """Response times, statuses, bytes and failures by kind, per scenario."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.monotonic()
        self.times: dict[str, list[float]] = {}
        self.failures: dict[str, Counter[str]] = {}
        self.statuses: dict[str, Counter[str]] = {}
        self.bytes_in: Counter[str] = Counter()

    def record(self, name: str, response_time: float, length: int, status: int,
               retry_after: bool, exception: BaseException | None) -> None:  # fmt: skip
        scenario = name.split(":", 1)[0].strip() or "other"
        self.times.setdefault(scenario, []).append(float(response_time))
        self.statuses.setdefault(scenario, Counter())[str(status)] += 1
        self.bytes_in[scenario] += max(0, int(length or 0))
        if exception is not None:
            kind = failure_kind(status, retry_after, exception)
            self.failures.setdefault(scenario, Counter())[kind] += 1

    def summary(self, seconds: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for scenario, values in sorted(self.times.items()):
            ordered = sorted(values)
            failures = self.failures.get(scenario, Counter())
            out[scenario] = {
                "requests": len(ordered),
                "failures": sum(failures.values()),
                "failure_kinds": dict(failures),
                "statuses": dict(self.statuses.get(scenario, Counter())),
                "rps": len(ordered) / seconds if seconds > 0 else 0.0,
                **{f"p{q}_ms": percentile(ordered, q / 100) for q in (50, 95, 99)},
                "max_ms": ordered[-1] if ordered else 0.0,
                "bytes": self.bytes_in[scenario],
            }
        return out


STATS = ScenarioStats()


def _options(parser: Any) -> None:
    group = parser.add_argument_group("Atlas")
    group.add_argument("--atlas-up-json", default="", env_var="ATLAS_UP_JSON",
                       help="atlas up's JSON line, or a file holding it")  # fmt: skip
    group.add_argument("--atlas-origin", default="", env_var="ATLAS_ORIGIN",
                       help="the test origin's URL (tests/origin_server.py)")  # fmt: skip
    group.add_argument("--atlas-scenarios-json", default="", env_var="ATLAS_LT_SCENARIOS_JSON",
                       help="write per-scenario statistics here at exit")  # fmt: skip


def _record(name: str, response_time: float, response_length: int, response: Any = None,
            exception: BaseException | None = None, **_: Any) -> None:  # fmt: skip
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None)
    retry_after = bool(headers is not None and headers.get("Retry-After"))
    STATS.record(name, response_time, response_length, status, retry_after, exception)


def _restart(**_: Any) -> None:
    """At the test's start and at ``--reset-stats`` (all users running)."""
    STATS.reset()


def _write(environment: Environment, **_: Any) -> None:
    path = getattr(environment.parsed_options, "atlas_scenarios_json", "")
    if path:
        seconds = time.monotonic() - STATS.started
        report = {"seconds": seconds, "scenarios": STATS.summary(seconds)}
        Path(path).write_text(json.dumps(report, indent=1), encoding="utf-8")


for hook, listener in [(events.init_command_line_parser, _options), (events.request, _record),
                       (events.reset_stats, _restart), (events.test_start, _restart),
                       (events.quitting, _write)]:  # fmt: skip
    hook.add_listener(listener)  # type: ignore[no-untyped-call]
