"""The proxy's status page (``/``) and its JSON (``/status.json``): the wallet as it is.

Channels are read from the wallet's payer store (``state.sqlite3``), so those
``atlas fetch`` or another process opened on the same data dir show up too, not
only this proxy's session; the day's spending per hour is the wallet's own
record there. Spending per site is this proxy's book. The page needs nothing
from the internet: its plot is inline SVG, refreshed with the page.
"""

from __future__ import annotations

import html
import time
from typing import Any

from aiohttp import web

from proxy.spending import today
from proxy.state import STATE, ProxyState
from requester.protocol import BTT_LOCAL, format_amount

REFRESH_SECONDS = 15
UP, DOWN = '<b class="up">up</b>', '<b class="down">DOWN</b>'


def _btt(units: int | None) -> str | None:
    return None if units is None else format_amount(units, BTT_LOCAL)


def _channels(state: ProxyState) -> list[dict[str, Any]]:
    """Every channel of the wallet in its store, whoever opened it."""
    if state.store is None:
        return []
    return [
        {"channel_id": c.terms.channel_id.hex(), "payee": str(c.terms.payee),
         "deposit": format_amount(c.terms.deposit, c.terms.asset),
         "deposit_units": str(c.terms.deposit),
         "spent": format_amount(c.issued, c.terms.asset), "spent_units": str(c.issued),
         "expires_at": c.terms.expires_at, "status": c.status}
        for c in state.store.channels()
    ]  # fmt: skip


async def snapshot(state: ProxyState) -> dict[str, Any]:
    """What ``/status.json`` answers (amounts as exact BTT text)."""
    balance: str | None = None
    if state.ledger is not None and state.address is not None:
        try:
            balance = _btt(await state.ledger.balance(state.address))
        except Exception as exc:  # the page still shows the rest
            balance = f"unknown ({type(exc).__name__})"
    by_hour = {} if state.store is None else state.store.spend_by_hour(today())
    limits = state.book.limits
    return {
        "wallet": None if state.address is None else str(state.address),
        "balance": balance,
        "spent_today": _btt(state.book.spent_today()),
        "per_site": {s: _btt(a) for s, a in state.book.by_site().items()},
        "wallet_spent_today": _btt(sum(by_hour.values())),
        "spent_by_hour": {f"{h:02d}": _btt(a) for h, a in sorted(by_hour.items())},
        "limits": {"per_request": _btt(limits.per_request), "per_day": _btt(limits.per_day)},
        "channels": _channels(state),
        "edges": {
            e: {"ok": h.ok, "detail": h.detail, "checked_at": round(h.checked_at)}
            for e, h in state.health.items()
        },
        "requests": state.requests,
        "tunnels": {"opened": state.tunnels_opened, "paying": state.tunnels_paying},
        "mode": "intercept" if state.intercept else "tunnel",
        "recent": [{"site": site, "providers": providers} for site, providers in state.recent],
    }


def day_plot(by_hour: dict[int, int]) -> str:
    """An inline SVG bar chart of the day's 24 UTC hours (base units spent), no script."""
    top = max(by_hour.values(), default=0) or 1
    width, height, bar, room = 480, 120, 20, 86
    now = time.gmtime().tm_hour
    bars = "".join(
        f'<rect x="{h * bar + 2}" y="{height - 20 - v * room / top:.1f}" width="16" '
        f'height="{v * room / top:.1f}" fill="{"#e3703a" if h == now else "#1f6feb"}">'
        f"<title>{h:02d}:00 UTC: {_btt(v)}</title></rect>"
        for h, v in sorted(by_hour.items()) if 0 <= h < 24 and v > 0
    )  # fmt: skip
    ticks = "".join(
        f'<text x="{h * bar + 10}" y="{height - 6}" text-anchor="middle">{h:02d}</text>'
        for h in range(0, 24, 3)
    )
    return (
        f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="BTT spent per hour today"><line x1="0" y1="{height - 20}" x2="{width}" '
        f'y2="{height - 20}" stroke="#999"/>{bars}{ticks}'
        f'<text x="{width - 4}" y="12" text-anchor="end">top hour {_btt(top)}</text></svg>'
    )


def _word(text: str) -> str:
    """A word that stays whole on a phone (cells break anywhere, for addresses and amounts)."""
    return f'<span class="word">{html.escape(text)}</span>'


def _rows(cells: list[list[str]], empty: str, columns: int) -> str:
    if not cells:
        return f'<tr><td colspan="{columns}" class="none">{empty}</td></tr>'
    return "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(request.app[STATE]))


async def status_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    s = await snapshot(state)
    plot = day_plot({} if state.store is None else state.store.spend_by_hour(today()))
    esc = html.escape
    sites = _rows([[esc(k), esc(str(v))] for k, v in s["per_site"].items()], "nothing yet", 2)
    chans = _rows([
        [f"<code>{esc(c['payee'])}</code>", f"{esc(c['spent'])} of {esc(c['deposit'])}",
         time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(c["expires_at"])), _word(c["status"])]
        for c in s["channels"]
    ], "none: the wallet has no channel yet", 4)  # fmt: skip
    edges = _rows([
        [esc(e), UP if h["ok"] else DOWN, esc(h["detail"])]
        for e, h in s["edges"].items()
    ], "not checked yet", 3)  # fmt: skip
    recent = _rows([
        [esc(r["site"]), esc(url), _word(str(p["lane"])), f"{p['bytes'] / (1 << 20):.2f} MiB",
         esc(_btt(None if (m := p["price_per_mib_paid"]) is None else int(m)) or "free"),
         f"{p['rate'] / (1 << 20):.2f} MiB/s"]
        for r in reversed(s["recent"]) for url, p in r["providers"].items() if p["chunks"]
    ], "none yet", 6)  # fmt: skip
    up = sum(1 for h in s["edges"].values() if h["ok"])
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><title>Atlas proxy</title><style>
body{{font-family:system-ui,sans-serif;max-width:56em;margin:1em auto;padding:0 1em;color:#222}}
.cards{{display:flex;flex-wrap:wrap;gap:.8em}}.card{{border:1px solid #ddd;border-radius:8px;
padding:.6em 1em;min-width:10em}}.card b{{display:block;font-size:1.3em}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.25em .3em;border-bottom:1px solid #eee;
text-align:left;overflow-wrap:anywhere}}th,.word,.up,.down{{overflow-wrap:normal}}.up{{color:#1a7f37}}.down{{color:#cf222e}}.none{{color:#888}}
.plot{{width:100%;max-width:480px;font-size:9px;fill:#555}}</style></head><body>
<h1>Atlas proxy</h1><div class="cards">
<div class="card">Balance<b>{esc(str(s["balance"]))}</b></div>
<div class="card">Wallet spent today<b>{esc(str(s["wallet_spent_today"]))}</b></div>
<div class="card">Spent today via this proxy<b>{esc(str(s["spent_today"]))}</b></div>
<div class="card">Edges up<b>{up} of {len(s["edges"])}</b></div></div>
<p>Wallet <code>{esc(str(s["wallet"]))}</code>. Limits: per request
{esc(str(s["limits"]["per_request"]))}, per day {esc(str(s["limits"]["per_day"]))}.
Mode: {s["mode"]}. Requests: {s["requests"]}.</p>
<h2>Spent per hour today (UTC), the whole wallet</h2>{plot}
<h2>Spent per site today</h2><table>{sites}</table>
<h2>Channels of this wallet</h2><table><tr><th>payee</th><th>spent of deposit</th>
<th>expires</th><th>status</th></tr>{chans}</table>
<h2>Edges</h2><table>{edges}</table>
<h2>Recent downloads by provider</h2><table><tr><th>site</th><th>provider</th><th>lane</th>
<th>bytes</th><th>paid per MiB</th><th>rate</th></tr>{recent}</table>
<p><a href="/ca">Certificate for HTTPS interception</a> &middot;
<a href="/proxy.pac">PAC file</a> &middot; <a href="/status.json">JSON</a></p>
</body></html>"""
    return web.Response(text=body, content_type="text/html")
