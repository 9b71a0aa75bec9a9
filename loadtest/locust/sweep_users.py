"""The locustfile of the saturation sweep (``python -m loadtest sweep``): closed-loop users,
with no think time, so the offered load grows with the user count and the knee of the
latency curve shows where a process saturates."""

from __future__ import annotations

import random

from locust import constant, task

from loadtest.locust import paying
from loadtest.locust.atlas_user import CACHED_ITEMS, SITE_ASSETS, AtlasUser

SMALL_OBJECTS = ("/site/index.html", *SITE_ASSETS, *CACHED_ITEMS[:16])


class EdgeSweepUser(paying.PayingEdgeUser):
    """The paying client against edge 1 only: the edge's whole paid-chunk path per request
    (voucher decode, channel check, durable voucher write, sendfile), checked by length."""

    scenario = "edge-sweep"
    wait_time = constant(0)
    edge_index = 0
    verify_every = 0


class ProxySweepUser(AtlasUser):
    """One small object at a time through the proxy (cache HITs at the edges after the
    first): the proxy's whole path, edge ``/v1/fetch``, a paid verified chunk, the relay."""

    scenario = "proxy-sweep"
    wait_time = constant(0)
    through_proxy = True

    @task
    def small_object(self) -> None:
        self.get_object(random.choice(SMALL_OBJECTS), "object", via=False)
