"""ChunkFiles writes and signs a body's chunks, cut in parts by the protocol's streaming
publisher, exactly as ContentPublisher cuts and signs them, without joining a chunk."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cdn_edge.content.chunk_files import ChunkFiles
from cdn_edge.content.chunk_store import ChunkStore
from requester.protocol import ContentPublisher, ManifestHead, NodeKey, UrlSource
from requester.protocol.publishing import ChunkCutter, Cut

SIZE = 16384
KEY = NodeKey.generate()
HEAD = ManifestHead.create(KEY, source=UrlSource("https://example.com/x"), status=200,
                           headers=[], created_at=1, chunk_size=SIZE)  # fmt: skip


def _pieces(total: int) -> list[bytes]:
    rng = random.Random(total)
    body = rng.randbytes(total)
    cuts = sorted(rng.sample(range(1, total), min(total - 1, 9))) if total > 1 else []
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


@pytest.mark.parametrize("total", [1, SIZE, 3 * SIZE + 5])
def test_chunk_files_hold_the_chunks_and_their_signed_statements(
    tmp_path: Path, total: int
) -> None:
    pieces = _pieces(total)
    cutter, files = ChunkCutter(SIZE), ChunkFiles(ChunkStore(tmp_path), KEY, HEAD)
    made = [files.take(cut) for piece in pieces for cut in cutter.feed(piece)]
    last = cutter.finish()
    if last is not None:
        made.append(files.take(last))
    ready = [p for p in made if p is not None]
    publisher = ContentPublisher(KEY, HEAD)
    chunks = [c for p in pieces for c in publisher.feed(p)]
    tail, seal = publisher.finish()
    chunks += tail
    assert [(p.tmp.read_bytes(), p.statement.encode()) for p in ready] == [
        (c.data, c.statement.encode()) for c in chunks
    ]
    assert files.seal().encode() == seal.encode()
    assert len(list((tmp_path / "tmp").iterdir())) == len(chunks)


def test_a_lost_part_fails_its_chunk_and_leaves_no_file(tmp_path: Path) -> None:
    files = ChunkFiles(ChunkStore(tmp_path), KEY, HEAD)
    assert files.take(Cut(b"a" * 100, 0, 0, False)) is None
    with pytest.raises(ValueError, match="expected 0:100"):
        files.take(Cut(b"c" * 100, 200, 0, True))  # the part at 100 never came
    assert not list((tmp_path / "tmp").iterdir())


def test_abort_removes_the_chunk_being_written(tmp_path: Path) -> None:
    files = ChunkFiles(ChunkStore(tmp_path), KEY, HEAD)
    files.take(Cut(b"a" * 100, 0, 0, False))
    files.abort()
    assert not list((tmp_path / "tmp").iterdir())
    with pytest.raises(RuntimeError, match="aborted"):
        files.take(Cut(b"a", 100, 0, False))
