"""RFC 9457 problems for what an Atlas server refuses before (or around) its own handlers.

aiohttp answers some requests itself, in ``text/plain``: a request head its parser
refuses (a line or header over the limits, too many headers, a bad Content-Length or
chunk size) and an exception no middleware caught. Every Atlas aiohttp server (edge,
ledger, the proxy's API) answers those as ``application/problem+json`` too, with a
message that says what was wrong, through :mod:`requester.guarded_server`. It is in the
SDK so that the proxy need not import the edge; ``cdn_edge/problems.py`` answers with
the same :func:`problem_response`, and every body is a :class:`requester.errors.Problem`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from requester.errors import PROBLEM_JSON, AtlasError, Problem

TOO_MANY_HEADERS = "Too many headers received"
"""aiohttp's own message for a head over ``max_headers`` fields."""
_BODY_HEADERS = {"content-type", "content-length", "content-encoding"}
HEAD_TOO_LARGE = 431
"""Request Header Fields Too Large (RFC 6585), for any head over the limits."""


def problem_response(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    *,
    title: str | None = None,
) -> web.Response:
    """An ``application/problem+json`` answer: every aiohttp problem Atlas sends."""
    body = Problem(status, code, detail, title).json()
    return web.Response(status=status, text=body, content_type=PROBLEM_JSON, headers=headers)


def error_response(exc: AtlasError, headers: Mapping[str, str] | None = None) -> web.Response:
    """The problem a server answers for ``exc`` (:meth:`AtlasError.answer`)."""
    answer = exc.answer()
    return problem_response(answer.status, answer.code, answer.detail, headers,
                            title=answer.title)  # fmt: skip


def parser_refusal(exc: BaseException | None, max_headers: int) -> tuple[str, str]:
    """``(code, detail)`` for a request head aiohttp's parser refused."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "the limit of"
        return "request_head_too_large", f"a request line or header is longer than {limit} bytes"
    if isinstance(exc, HttpProcessingError) and exc.message == TOO_MANY_HEADERS:
        return "request_head_too_large", f"the request has more than {max_headers} headers"
    if isinstance(exc, HttpProcessingError):
        lines = exc.message.strip().splitlines()  # the rest points at the bytes in error
        first = lines[0].rstrip(":") if lines else type(exc).__name__
        return "bad_http_request", f"malformed HTTP request: {first[:200]}"
    return "bad_http_request", "malformed HTTP request"


def error_problem(status: int, exc: BaseException | None, max_headers: int) -> web.Response:
    """The problem for an error aiohttp itself answers (``RequestHandler.handle_error``)."""
    if status == 500:
        return problem_response(500, "internal_error", "internal error; see the server log")
    if status == 504:
        return problem_response(504, "handler_timeout", "the request handler timed out")
    code, detail = parser_refusal(exc, max_headers)
    return problem_response(HEAD_TOO_LARGE if code == "request_head_too_large" else status,
                            code, detail)  # fmt: skip


def http_exception_problem(exc: web.HTTPException, request: web.BaseRequest) -> web.Response:
    """An aiohttp HTTP error (404 of the router, 405, 413 of ``client_max_size``...) as a
    problem with the same status and headers (``Allow``, ``Retry-After``)."""
    code = exc.reason.lower().replace(" ", "_")
    detail = exc.text or exc.reason
    if detail == f"{exc.status}: {exc.reason}":  # aiohttp's own text: say more
        if isinstance(exc, web.HTTPNotFound):
            detail = f"nothing at {request.path[:200]}"
        elif isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            detail = f"{exc.method} is not allowed on {request.path[:200]}; use {allowed}"
    kept = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
    return problem_response(exc.status, code, detail, kept)
