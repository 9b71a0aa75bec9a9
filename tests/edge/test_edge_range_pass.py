"""Range requests for URLs whose responses the edge cannot reuse go to the origin.

The test origin's ``/site/video.bin`` (20 MiB) has no freshness and no validator, and
answers single ranges with 206, like a video server. Once the edge has seen that a URL's
response cannot be reused, a Range request for it becomes a fetch of that range: the
edge signs the origin's 206 (with its ``content-range``) and does not download the rest.
Reusable URLs, and URLs the edge has not seen yet, are fetched whole as before, and the
requester cuts the range from the chunks.
"""

from __future__ import annotations

import aiohttp

from tests.edge.edge_client import download, fetch
from tests.origin_server import SITE_VIDEO_SIZE, pattern, text
from tests.processes import Running

RANGE = {"Range": "bytes=1000000-1065535"}


async def test_a_range_of_an_unreusable_url_is_fetched_alone(
    origin: Running, free_edge: Running
) -> None:
    url = f"{origin.url}/site/video.bin?t=pass"
    async with aiohttp.ClientSession() as session:
        first, body = await download(session, free_edge.url, url, RANGE)  # not seen yet: whole
        ranged, part = await download(session, free_edge.url, url, RANGE)
        again = await fetch(session, free_edge.url, url, {"Range": "bytes = 1000000-1065535"})
        tail, end = await download(
            session, free_edge.url, url, {"Range": f"bytes={SITE_VIDEO_SIZE - 100}-"}
        )
        # the test origin ignores suffix ranges: its whole 200 is served as it came
        ignored, full = await download(session, free_edge.url, url, {"Range": "bytes=-100"})
        multi, whole = await download(
            session, free_edge.url, url, {"Range": "bytes=0-9,20-29"}
        )  # not one range: the edge fetches the whole response
    assert first.head.status == 200 and len(body) == SITE_VIDEO_SIZE
    assert ranged.head.status == 206
    content_range = dict(ranged.head.headers)["content-range"]
    assert content_range == f"bytes 1000000-1065535/{SITE_VIDEO_SIZE}"
    assert part == pattern(1000000, 65536)
    assert again.head.status == 206 and again.info["cache"] in ("MISS", "JOINED")
    assert again.info["content_id"] != ranged.info["content_id"]  # never stored, never reused
    assert tail.head.status == 206 and end == pattern(SITE_VIDEO_SIZE - 100, 100)
    assert ignored.head.status == 200 and full == body
    assert multi.head.status == 200 and whole == body


async def test_reusable_responses_are_still_fetched_whole(
    origin: Running, free_edge: Running
) -> None:
    url = f"{origin.url}/cached/range-pass"
    async with aiohttp.ClientSession() as session:
        first, body = await download(session, free_edge.url, url)
        second, again = await download(session, free_edge.url, url, {"Range": "bytes=0-9"})
    assert first.head.status == second.head.status == 200
    assert second.info["cache"] == "HIT" and again == body == text(5000) + b"range-pass"
