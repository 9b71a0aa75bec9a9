"""The locustfile of the load test (locust.conf's; a hand run: loadtest/README.md): the
scenarios ``browser``, ``mobile``, ``paying`` (:mod:`.paying`) and ``operator`` against
``atlas up`` and the test origin; each request's name starts with its scenario and a colon."""

from __future__ import annotations

import random
from urllib.parse import urlencode

import gevent.pool  # type: ignore[import-untyped]
from locust import between, constant_pacing, task

from loadtest.locust.atlas_user import (
    CACHED_ITEMS,
    MIB,
    SITE_ASSETS,
    VIDEO_SIZE,
    AtlasUser,
    Targets,
    setting,
    think_time,
)
from loadtest.locust.paying import PayingEdgeUser
from tests.origin_server import pattern

PAGE_PARALLEL = 6
"""Objects a browser fetches at once over its connections to the proxy."""
LARGE_SIZES = (2 * MIB, 3 * MIB, 4 * MIB)
RANGE_SIZES = (64 * 1024, 256 * 1024, 1024 * 1024)

__all__ = ["BrowserUser", "MobileUser", "OperatorUser", "PayingEdgeUser"]


class BrowserUser(AtlasUser):
    """A page with many small objects through the proxy; now and then a large download."""

    scenario = "browser"
    weight = 5
    wait_time = between(*think_time("ATLAS_LT_THINK_BROWSER", (1.0, 3.0)))
    through_proxy = True
    large_p = setting("ATLAS_LT_LARGE_P", 0.1)
    cached_per_page = 8

    @task
    def page(self) -> None:
        self.get_object("/site/index.html", "page")
        objects = [(p, "site asset") for p in SITE_ASSETS]
        objects += [(p, "cached item") for p in random.sample(CACHED_ITEMS, self.cached_per_page)]
        pool = gevent.pool.Pool(PAGE_PARALLEL)
        for path, what in objects:
            pool.spawn(self.get_object, path, what)
        pool.join()
        if random.random() < self.large_p:
            size = random.choice(LARGE_SIZES)
            self.get_object(f"/bytes/{size}", "large object", size)


class MobileUser(AtlasUser):
    """A phone app on the mobile API seeking through a video with Range requests."""

    scenario = "mobile"
    weight = 2
    wait_time = between(*think_time("ATLAS_LT_THINK_MOBILE", (0.5, 2.0)))

    def base_url(self, t: Targets) -> str:
        return t.api

    def on_start(self) -> None:
        self.path = "/v1/fetch?" + urlencode({"url": f"{self.targets.origin}/site/video.bin"})
        self.auth = {"Authorization": f"Bearer {self.targets.api_token}"}

    @task
    def seek(self) -> None:
        length = random.choice(RANGE_SIZES)
        first = random.randrange(0, VIDEO_SIZE - length)
        last = first + length - 1
        headers = {**self.auth, "Range": f"bytes={first}-{last}"}
        with self.client.get(self.path, headers=headers, name=self.name("video range"),
                             catch_response=True) as resp:  # fmt: skip
            body = resp.content or b""
            if resp.status_code != 206:
                resp.failure(f"HTTP {resp.status_code}, want 206: {body[:120]!r}")
            elif resp.headers.get("Content-Range") != f"bytes {first}-{last}/{VIDEO_SIZE}":
                resp.failure(f"Content-Range {resp.headers.get('Content-Range')!r}")
            elif len(body) != length or body[:32] != pattern(first, 32):
                resp.failure(f"wrong bytes: {len(body)} of {length}")
            else:
                resp.success()


class OperatorUser(AtlasUser):
    """An operator's Prometheus: every edge's and the proxy's ``/metrics`` every 2 s."""

    scenario = "operator"
    fixed_count = 1
    wait_time = constant_pacing(2.0)

    def base_url(self, t: Targets) -> str:
        return t.api

    @task
    def scrape(self) -> None:
        for edge in self.targets.edges:
            self.scrape_one(f"{edge}/metrics", "edge /metrics", "atlas_edge_sent_bytes_total")
        token = {"Authorization": f"Bearer {self.targets.api_token}"}  # the proxy's API needs it
        self.scrape_one("/metrics", "proxy /metrics", "atlas_proxy_requests", token)

    def scrape_one(self, url: str, what: str, needle: str,
                   headers: dict[str, str] | None = None) -> None:  # fmt: skip
        with self.client.get(url, name=self.name(what), headers=headers,
                             catch_response=True) as resp:  # fmt: skip
            if resp.status_code != 200 or needle not in (resp.text or ""):
                resp.failure(f"HTTP {resp.status_code}, {needle} missing")
            else:
                resp.success()
