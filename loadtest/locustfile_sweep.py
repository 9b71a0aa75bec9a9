"""Closed-loop users for the saturation sweep (``run_loadtest.py --sweep``).

No think time: each user sends its next request as soon as the last one is answered,
so the offered load grows with the user count and the knee of the latency curve
shows where a process saturates.

- ``EdgeSweepUser`` is the paying client of ``locustfile.py`` against edge 0 only:
  one paid 256 KiB chunk per request (a new cumulative voucher each time), the
  edge's whole per-request path (voucher decode, channel check, durable voucher
  write, sendfile).
- ``ProxySweepUser`` asks the proxy for one small object at a time (the page, its
  assets and ``/cached/`` items, all cache HITs at the edges after the first),
  so every request is the proxy's whole path: edge ``/v1/fetch``, a paid chunk,
  verification, relay through mitmproxy.
"""

from __future__ import annotations

import random

from locust import constant, task
from locust.env import Environment

import loadtest.locustfile as base
from loadtest.atlas_load import Targets

SMALL_OBJECTS = ("/site/index.html", *base.SITE_ASSETS, *base.CACHED_ITEMS[:16])


class EdgeSweepUser(base.PayingEdgeUser):
    scenario = "edge-sweep"
    wait_time = constant(0)
    edge_index = 0
    verify_every = 0


class ProxySweepUser(base.AtlasUser):
    scenario = "proxy-sweep"
    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        t = base.targets(environment)
        self.proxy_host, self.proxy_port = t.proxy_address
        super().__init__(environment)

    def base_url(self, t: Targets) -> str:
        return t.origin

    @task
    def small_object(self) -> None:
        path = random.choice(SMALL_OBJECTS)
        with self.client.get(path, name=self.name("object"), catch_response=True) as resp:
            body = resp.content or b""
            length = resp.headers.get("Content-Length") if resp.headers else None
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {body[:120]!r}")
            elif length is None or int(length) != len(body):
                resp.failure(f"short body: {len(body)} of Content-Length {length}")
            else:
                resp.success()
