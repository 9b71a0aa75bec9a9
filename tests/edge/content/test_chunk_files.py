"""ChunkCutter and ChunkFiles cut and write a body fed in pieces of any size exactly as
ContentPublisher cuts and signs it, without joining a chunk in memory."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cdn_edge.content.chunk_cutter import ChunkCutter, ChunkFiles, Prepared
from cdn_edge.content.chunk_store import ChunkStore
from requester.protocol import ContentPublisher, ManifestHead, NodeKey, UrlSource

SIZE = 16384
KEY = NodeKey.generate()
HEAD = ManifestHead.create(KEY, source=UrlSource("https://example.com/x"), status=200,
                           headers=[], created_at=1, chunk_size=SIZE)  # fmt: skip


def _pieces(total: int) -> tuple[bytes, list[bytes]]:
    rng = random.Random(total)
    body = rng.randbytes(total)
    cuts = sorted(rng.sample(range(1, total), min(total - 1, 9))) if total > 1 else []
    return body, [body[a:b] for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def _cut(pieces: list[bytes]) -> list[bytes]:
    """The chunks the cutter's parts make, joined here to compare."""
    cutter, chunks, current = ChunkCutter(SIZE), list[bytes](), bytearray()
    for piece in pieces:
        for part, offset, ends in cutter.feed(piece):
            assert offset == len(current)
            current += part
            if ends:
                chunks.append(bytes(current))
                current.clear()
    last = cutter.finish()
    assert last == (len(current) or None)
    assert cutter.total == sum(map(len, pieces))
    assert cutter.count == len(chunks) + (last is not None)
    return [*chunks, bytes(current)] if last is not None else chunks


def _publisher_chunks(pieces: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(chunk bytes, encoded statement) as ContentPublisher cuts and signs them."""
    publisher = ContentPublisher(KEY, HEAD)
    chunks = [c for p in pieces for c in publisher.feed(p)] + list(publisher.finish()[0])
    return [(c.data, c.statement.encode()) for c in chunks]


@pytest.mark.parametrize("total", [0, 1, SIZE - 1, SIZE, SIZE + 1, 5 * SIZE, 7 * SIZE + 123])
def test_pieces_of_any_size_make_the_publishers_chunks(total: int) -> None:
    body, pieces = _pieces(total)
    assert _cut(pieces) == [data for data, _ in _publisher_chunks(pieces)]
    assert b"".join(_cut([body])) == body


def test_a_piece_inside_one_chunk_is_passed_on_as_is() -> None:
    piece = random.Random(1).randbytes(SIZE - 1)
    assert ChunkCutter(SIZE).feed(piece)[0][0] is piece


@pytest.mark.parametrize("total", [1, SIZE, 3 * SIZE + 5])
def test_chunk_files_hold_the_chunks_and_their_signed_statements(
    tmp_path: Path, total: int
) -> None:
    _, pieces = _pieces(total)
    cutter, files = ChunkCutter(SIZE), ChunkFiles(ChunkStore(tmp_path), KEY, HEAD)
    made: list[Prepared | None] = []
    for piece in pieces:
        for part, offset, ends in cutter.feed(piece):
            made.append(files.take(part, offset, cutter.count - 1 if ends else None))
    last = cutter.finish()
    if last is not None:
        made.append(files.take(b"", last, cutter.count - 1))
    ready = [p for p in made if p is not None]
    expected = _publisher_chunks(pieces)
    assert [(p.tmp.read_bytes(), p.statement.encode()) for p in ready] == expected
    assert len(list((tmp_path / "tmp").iterdir())) == len(expected)


def test_a_lost_part_fails_its_chunk_and_leaves_no_file(tmp_path: Path) -> None:
    files = ChunkFiles(ChunkStore(tmp_path), KEY, HEAD)
    assert files.take(b"a" * 100, 0, None) is None
    with pytest.raises(RuntimeError, match="expected 100"):
        files.take(b"c" * 100, 200, 0)  # the part at 100 never came
    assert not list((tmp_path / "tmp").iterdir())


def test_abort_removes_the_chunk_being_written(tmp_path: Path) -> None:
    files = ChunkFiles(ChunkStore(tmp_path), KEY, HEAD)
    files.take(b"a" * 100, 0, None)
    files.abort()
    assert not list((tmp_path / "tmp").iterdir())
    with pytest.raises(RuntimeError, match="aborted"):
        files.take(b"a", 100, None)
