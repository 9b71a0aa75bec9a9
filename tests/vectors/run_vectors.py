"""The chunk run vectors (run.json): the frames of runs over manifest.json's URL content.

Imported by generate.py, which writes the file; tests/protocol/test_chunk_run.py checks
the code against it without importing this module. A frame's body is the chunk's bytes
(manifest.json's body pattern), so only the frame and trailer headers are listed.
"""

from __future__ import annotations

from typing import Any

from requester.protocol.chunk_run import FrameHeader, RunEnd, RunTrailer
from requester.protocol.quote import chunk_price


def _frame_json(frame: FrameHeader, offset: int) -> dict[str, Any]:
    return {
        "index": frame.index, "price": str(frame.price), "wire_len": frame.wire_len,
        "zstd": frame.zstd, "paid_by": frame.paid_by, "lane": frame.lane,
        "body_offset": offset, "statement": frame.statement.hex(), "header": frame.encode().hex(),
    }  # fmt: skip


def _trailer_json(trailer: RunTrailer) -> dict[str, Any]:
    return {
        "reason": int(trailer.reason), "reason_name": trailer.reason.name.lower(),
        "frames": trailer.frames, "charged": str(trailer.charged), "detail": trailer.detail,
        "encoded": trailer.encode().hex(),
    }  # fmt: skip


def run_vectors(content: dict[str, Any], price_per_chunk: int, per_mib: int) -> dict[str, Any]:
    """A complete paid run of every chunk of ``content`` (manifest.json's), and a run asked
    from its last chunk for 4 that ends at the content's end, served free."""
    statements = content["statements"]
    frames, charged = [], 0
    for st in statements:
        price = chunk_price(price_per_chunk, per_mib, st["size"])
        header = FrameHeader(st["index"], price, st["size"], bytes.fromhex(st["encoded"]))
        frames.append(_frame_json(header, st["offset"]))
        charged += price
    complete = RunTrailer(RunEnd.COMPLETE, len(frames), charged)
    last = statements[-1]
    free = FrameHeader(last["index"], 0, last["size"], bytes.fromhex(last["encoded"]),
                       paid_by="free", lane="free")  # fmt: skip
    ended = RunTrailer(RunEnd.END, 1, 0, f"the content has {len(statements)} chunks")
    return {
        "description": (
            "Chunk runs (ATR\\x01; docs/protocol.md 13) over manifest.json's 'url' content. "
            "A run's body is, per chunk, 'header' (164 bytes) then wire_len bytes of the "
            "content from body_offset, then the trailer ('encoded', 20 bytes + detail). "
            "'paid' asks GET /v1/run/{content_id}/0?count=" + str(len(statements)) + " paid "
            "by one voucher, each frame priced price_per_chunk + "
            "ceil(price_per_mib * size / 2^20); "
            "'end' asks from the last chunk for 4 and is served free. Amounts are decimal strings."
        ),
        "content_id": content["content_id"],
        "price_per_chunk": str(price_per_chunk),
        "price_per_mib": str(per_mib),
        "runs": [
            {"name": "paid", "first": 0, "count": len(statements), "frames": frames,
             "trailer": _trailer_json(complete),
             "content_length": sum(164 + f["wire_len"] for f in frames) + 20},
            {"name": "end", "first": last["index"], "count": 4,
             "frames": [_frame_json(free, last["offset"])], "trailer": _trailer_json(ended)},
        ],
    }  # fmt: skip
