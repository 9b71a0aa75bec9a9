"""ChunkCutter cuts a body fed in pieces of any size exactly as ContentPublisher does."""

from __future__ import annotations

import random

import pytest

from cdn_edge.content.chunk_cutter import ChunkCutter
from requester.protocol import ContentPublisher, ManifestHead, NodeKey, UrlSource

SIZE = 16384
KEY = NodeKey.generate()


def _head() -> ManifestHead:
    source = UrlSource("https://example.com/x")
    return ManifestHead.create(KEY, source=source, status=200, headers=[], created_at=1,
                               chunk_size=SIZE)  # fmt: skip


def _cut(pieces: list[bytes]) -> list[bytes]:
    cutter = ChunkCutter(SIZE)
    chunks = [chunk for piece in pieces for chunk in cutter.feed(piece)]
    last = cutter.finish()
    assert cutter.total == sum(map(len, pieces))
    return [*chunks, last] if last is not None else chunks


@pytest.mark.parametrize("total", [0, 1, SIZE - 1, SIZE, SIZE + 1, 5 * SIZE, 7 * SIZE + 123])
def test_pieces_of_any_size_make_the_publishers_chunks(total: int) -> None:
    rng = random.Random(total)
    body = rng.randbytes(total)
    cuts = sorted(rng.sample(range(1, total), min(total - 1, 9))) if total > 1 else []
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    publisher = ContentPublisher(KEY, _head())
    signed = [c.data for p in pieces for c in publisher.feed(p)] + [
        c.data for c in publisher.finish()[0]
    ]
    assert _cut(pieces) == signed
    assert b"".join(_cut([body])) == body


def test_a_piece_that_is_one_whole_chunk_is_not_copied() -> None:
    piece = random.Random(1).randbytes(SIZE)
    assert _cut([piece])[0] is piece
