"""The edge's status page (``GET /``): what an operator keeps open.

Server-rendered HTML with its CSS and SVG plots inline: nothing to fetch, no script.
It reloads itself every :data:`REFRESH_SECONDS`, reflows to one column on a phone, and
escapes every value that came from outside (payer addresses, tracker URLs, errors).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from cdn_edge.dashboard.facts import Facts
from cdn_edge.dashboard.health import Probe
from cdn_edge.dashboard.history import Sample
from cdn_edge.dashboard.plots import MAX_POINTS, Series, bucket, plot
from cdn_edge.dashboard.style import CSS
from requester.protocol import format_amount

REFRESH_SECONDS = 30
MAX_CHANNEL_ROWS = 50


def render(f: Facts, node_id: str, payee: str, ledger: str) -> str:
    e = html.escape
    btt = _amount(f)
    day = f.day
    ratio = day.hit_ratio
    cap_share = f.stored_bytes / f.store_cap if f.store_cap else 0.0
    cards = "".join((
        _card("Earned today", btt(f.today)), _card("Last 7 days", btt(f.week)),
        _card("Unredeemed", btt(f.earned - f.redeemed)), _card("Redeemed", btt(f.redeemed)),
        _card("Next settlement", _next_settlement(f)),
        _card("Cache hit ratio (24 h)", "&ndash;" if ratio is None else f"{ratio:.0%}",
              f"hits {day.hits}, misses {day.misses}"),
        _card("Store", f"{_bytes(f.stored_bytes)} of {_bytes(f.store_cap)}",
              f'<meter min="0" max="1" value="{cap_share:.3f}"></meter> {cap_share:.1%}'),
        _card("Open channels", str(len(f.channels)), f"payers: {len(f.payers)}"),
        _card("Price per MiB", btt(f.price_per_mib), "fixed (no market)"
              if f.market_winners is None else f"clearing price; winners: {f.market_winners}"),
    ))  # fmt: skip
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>Atlas edge · {e(node_id[:12])}</title><style>{CSS}</style></head>
<body><header><h1>Atlas edge</h1><p class="ids">Node <code>{e(node_id)}</code><br>
Payee <code>{e(payee)}</code><br>Ledger <code>{e(ledger)}</code></p>
<p class="stamp">{e(time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(f.now)))} ·
refreshes every {REFRESH_SECONDS} s</p></header>
<section class="cards">{cards}</section>
<section class="plots">{_earnings_plot(f)}{_bytes_plot(f)}</section>
<section class="grid">
<div class="box"><h2>Traffic</h2>{_traffic(f)}</div>
<div class="box"><h2>Health</h2>{_health(f)}</div>
<div class="box"><h2>Tunnels and torrents</h2>{_tunnels(f)}</div>
</section>
<section class="box"><h2>Open channels</h2>{_channels(f)}</section>
{_torrents(f)}
<footer><a href="/metrics">metrics</a> · <a href="/v1/info">info</a> ·
<a href="/healthz">healthz</a></footer></body></html>"""


def _card(title: str, value: str, note: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return f'<div class="card"><h2>{title}</h2><div class="value">{value}</div>{note_html}</div>'


def _amount(f: Facts) -> Callable[[int], str]:
    return lambda units: html.escape(format_amount(units, f.asset))


def _next_settlement(f: Facts) -> str:
    at = f.settling.next_at
    if at is None:
        return "&ndash;"
    return f"in {max(at - f.now, 0):.0f} s<br><small>every {f.settle_interval:g} s</small>"


def _earnings_plot(f: Facts) -> str:
    span = f.span
    points = bucket([(s.t, (s.earned - f.series_base) / f.asset.one) for s in f.series],
                    span, add=False)  # fmt: skip
    return plot(f"Earned, {f.asset.symbol}", [Series("earned", points)], span,
                lambda v: f"{v:.6g} {f.asset.symbol}")  # fmt: skip


def _bytes_plot(f: Facts) -> str:
    span = f.span
    merged = _merge(f.series, span)
    paid = [(s.t, s.paid_bytes / s.seconds) for s in merged]
    free = [(s.t, s.free_bytes / s.seconds) for s in merged]
    return plot("Bytes served per second",
                [Series("paid lane", paid), Series("free lane", free)], span,
                lambda v: f"{_bytes(v)}/s")  # fmt: skip


def _merge(samples: list[Sample], span: tuple[float, float]) -> list[Sample]:
    """At most :data:`MAX_POINTS` samples: each bucket sums its bytes and seconds."""
    width = max(span[1] - span[0], 1.0) / MAX_POINTS
    out: dict[int, Sample] = {}
    for s in samples:
        key = int((s.t - span[0]) // width)
        prev = out.get(key)
        out[key] = s if prev is None else Sample(
            s.t, prev.seconds + s.seconds, s.earned, s.redeemed,
            prev.paid_bytes + s.paid_bytes, prev.free_bytes + s.free_bytes,
            prev.hits + s.hits, prev.misses + s.misses, s.stored_bytes, s.channels,
        )  # fmt: skip
    return [out[k] for k in sorted(out)]


def _traffic(f: Facts) -> str:
    rows = [("Paid lane, 24 h", _bytes(f.day.paid_bytes)),
            ("Free lane, 24 h", _bytes(f.day.free_bytes))]  # fmt: skip
    rows += [(f"{lane.capitalize()} lane, since start", _bytes(n))
             for lane, n in sorted(f.lanes.items())]  # fmt: skip
    rows += [(f"Fetches {cache}, since start", str(n)) for cache, n in sorted(f.cache.items())]
    return _table(rows)


def _health(f: Facts) -> str:
    rows = [("Ledger", _probe(f.health.ledger))]
    rows += [(f"Tracker {html.escape(url)}", _probe(p)) for url, p in f.health.trackers.items()]
    if not f.health.trackers:
        rows.append(("Trackers", "none configured"))
    return _table(rows)


def _probe(p: Probe) -> str:
    if p.up is None:
        return '<span class="warn">not checked yet</span>'
    if p.up:
        return f'<span class="ok">● up</span> {p.latency * 1000:.0f} ms'
    return f'<span class="bad">● down</span> {html.escape(p.detail)}'


def _tunnels(f: Facts) -> str:
    rows = [("Tunnels open", str(f.tunnels_open)), ("Tunnels opened", str(f.tunnels_opened))]
    rows += [(f"Tunnel bytes {d}", _bytes(n)) for d, n in sorted(f.tunnel_bytes.items())]
    rows.append(("Torrents", "on" if f.torrents_on else "off"))
    rows.append(("Seeded to peers", _bytes(f.seeded_bytes)))
    return _table(rows)


def _channels(f: Facts) -> str:
    if not f.channels:
        return "<p>No open channels.</p>"
    btt = _amount(f)
    rows = "".join(
        f"<tr><td><code>{html.escape(r.payer)}</code></td>"
        f"<td><code>{html.escape(r.channel_id[:16])}…</code></td><td>{btt(r.deposit)}</td>"
        f"<td>{btt(r.paid)}</td><td>{btt(r.redeemed)}</td>"
        f"<td>{html.escape(time.strftime('%Y-%m-%d %H:%M', time.localtime(r.expires_at)))}</td>"
        "</tr>"
        for r in f.channels[:MAX_CHANNEL_ROWS]
    )
    more = len(f.channels) - MAX_CHANNEL_ROWS
    tail = f"<p>and {more} more</p>" if more > 0 else ""
    return (
        '<div class="scroll"><table class="channels"><tr><th>payer</th><th>channel</th>'
        f"<th>deposit</th><th>paid</th><th>redeemed</th><th>expires</th></tr>{rows}</table>"
        f"</div>{tail}"
    )


def _torrents(f: Facts) -> str:
    """The torrents in the session (none listed: no section)."""
    if not f.torrents:
        return ""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(t.name)}<br><code>{e(t.infohash[:16])}…</code></td>"
        f"<td>{_bytes(t.done)} of {_bytes(t.size)}</td><td>{t.peers}</td>"
        f"<td>{_bytes(t.uploaded)}</td><td>{t.streams}</td>"
        f"<td>{e(t.error) or 'ok'}</td></tr>"
        for t in f.torrents[:MAX_CHANNEL_ROWS]
    )
    return (
        '<section class="box"><h2>Torrents</h2><div class="scroll"><table class="channels">'
        "<tr><th>torrent</th><th>have</th><th>peers</th><th>seeded</th><th>streams</th>"
        f"<th>state</th></tr>{rows}</table></div></section>"
    )


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
