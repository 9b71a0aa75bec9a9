"""One middleware that turns every refusal into an RFC 9457 JSON problem.

Handlers raise a :class:`~requester.errors.Refusal` (the wire protocol's or the
server's own, :mod:`requester.errors`) or aiohttp's HTTP exceptions; clients get
``application/problem+json`` with a precise message and the right 4xx, never an
HTML page or a traceback. Anything else (an SDK failure included) is the server's own
fault: logged, and answered 500. What aiohttp answers before any middleware runs (a
refused request head) is a problem too: see ``requester/guarded_server.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from requester.errors import Refusal
from requester.listener_problems import (
    error_response,
    http_exception_problem,
    problem_response,
)

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
__all__ = ["problem_middleware", "problem_response", "read_json"]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refusal as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_exception_problem(exc, request)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "internal_error", "internal error; see the server log")


async def read_json(request: web.Request) -> object:
    """The request body as JSON, or a 400 problem that says why not.

    Parses the raw bytes (JSON is UTF-8; a bogus charset parameter is ignored)
    and refuses what Python's parser cannot take: nesting too deep for the
    recursion limit, integers over its digit limit.
    """
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise web.HTTPBadRequest(text=f"body is not acceptable JSON: {reason}") from exc
