"""The edge's DHT node id (and routing table), kept in its data dir across restarts.

Other nodes file a node under its id: one that comes back under a new id is a
stranger whose old entries linger until they time out, and whatever it stored
near its old id is looked for in the wrong place. libtorrent keeps the id in its
``dht_state``, but only uses a saved one when the DHT starts *after* the state is
given: a session built with ``enable_dht`` on starts its DHT while applying the
settings, before the ``session_params``' state is read, and draws a random id
(libtorrent 2.1, ``session_impl::start_dht`` moves the state into the first DHT it
starts). So :func:`session_with_state` builds the session with the DHT off and
turns it on after.

On a public address libtorrent may still replace the id once it learns its external
IP (BEP 42 ties ids to addresses); :class:`StateKeeper` saves whatever id is current,
so the next start keeps the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import libtorrent as lt

from cdn_edge.config import EdgeConfig

log = logging.getLogger(__name__)

STATE_FILE = "dht-state.bencode"
"""In the edge's data dir: the bencoded ``dht state`` (node ids, known nodes)."""
SAVE_EVERY = 300.0
"""Seconds between saves of an unchanged id (the routing table changes all the time)."""
MAX_STATE_BYTES = 64 * 1024
FEW_NODES = 8
"""Below this many known nodes at the last save, any change of them is saved at once."""
KEEP_TICK = 2.0
"""Seconds between looks at the node id: the first save comes this soon after start."""


def load_state(path: Path) -> bytes | None:
    """The saved ``dht state`` as a session-params buffer; None when missing or unreadable
    (a damaged file costs the old id, never the start)."""
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_STATE_BYTES:
            raise ValueError(f"{len(raw)} bytes")
        state: Any = lt.bdecode(raw)
        if not isinstance(state, dict) or not isinstance(state.get(b"node-id"), list):
            raise ValueError("no node-id list")
        wrapped: dict[bytes, Any] = {b"dht state": state}
        return bytes(lt.bencode(wrapped))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("ignoring the DHT state in %s: %s", path, exc)
        return None


def session_with_state(settings: lt.settings_pack, state: bytes | None) -> lt.session:
    """A session with ``settings`` whose DHT starts from ``state`` (its saved node id)."""
    if state is None or not settings.get("enable_dht"):
        return lt.session(settings)
    try:
        params = lt.read_session_params(state, lt.save_state_flags_t.save_dht_state)
    except RuntimeError as exc:  # libtorrent refused it: a new id, not a failed start
        log.warning("ignoring the saved DHT state: %s", exc)
        return lt.session(settings)
    params.settings = {**settings, "enable_dht": False}
    session = lt.session(params)
    session.apply_settings({"enable_dht": True})  # the first DHT start: it takes the state
    return session


def dht_state(session: lt.session) -> dict[bytes, Any]:
    """The session's ``dht state`` now (``node-id``: each id followed by its address)."""
    flags = lt.save_state_flags_t.save_dht_state
    saved: Any = lt.bdecode(lt.write_session_params_buf(session.session_state(flags), flags))
    state = saved.get(b"dht state") if isinstance(saved, dict) else None
    return state if isinstance(state, dict) else {}


def node_ids(state: dict[bytes, Any]) -> list[bytes]:
    """The 20-byte node ids in ``state`` (one per address the DHT listens on)."""
    listed = state.get(b"node-id")
    entries = listed if isinstance(listed, list) else []
    return [bytes(e[:20]) for e in entries if isinstance(e, bytes) and len(e) >= 20]


class StateKeeper:
    """Saves the DHT state to ``path`` when the node id changes, when the known nodes
    change while they are few (a new network: a restarted node rejoins from them, with no
    bootstrap node of its own), and every :data:`SAVE_EVERY` seconds; :meth:`tick` often."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: tuple[list[bytes], list[Any]] = ([], [])
        self._due = 0.0

    def tick(self, session: lt.session, now: float) -> None:
        state = dht_state(session)
        ids, nodes = node_ids(state), state.get(b"nodes", [])
        if not ids:
            return
        saved_ids, saved_nodes = self._saved
        few = len(saved_nodes) < FEW_NODES and nodes != saved_nodes
        if ids == saved_ids and not few and now < self._due:
            return
        data = bytes(lt.bencode(state))
        if len(data) > MAX_STATE_BYTES:  # a huge table: the ids are what matters
            data = bytes(lt.bencode({b"node-id": state[b"node-id"]}))
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_bytes(data)
        temporary.replace(self.path)
        self._saved, self._due = (ids, nodes), now + SAVE_EVERY


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def dht_state_opener(config: EdgeConfig) -> Callable[[lt.settings_pack], lt.session]:
    """How the edge's libtorrent session is built: with ``--dht``, from the state saved
    in its data dir (its node id); else as libtorrent builds any session."""
    if not config.dht:
        return lt.session
    return partial(session_with_state, state=load_state(state_path(config.data_dir)))


async def keep_state(session: Callable[[], lt.session], path: Path) -> None:
    """Forever: save the DHT state when its node id changes (at start, then rarely)."""
    keeper = StateKeeper(path)
    while True:
        try:
            keeper.tick(session(), time.monotonic())
        except (OSError, RuntimeError) as exc:
            log.warning("could not save the DHT state to %s: %s", path, exc)
        await asyncio.sleep(KEEP_TICK)
