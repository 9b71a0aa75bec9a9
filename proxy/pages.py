"""The proxy's own pages: status (balance, spending, channels, edges), the CA
certificate with install steps (as mitmproxy does at mitm.it), a PAC file, metrics.

They are reachable through the proxy at ``http://atlas.proxy/`` and directly
on the API port.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from proxy.failures import Failure
from proxy.state import STATE, ProxyState
from requester.protocol import BTT_LOCAL, format_amount

Render = Callable[[Failure, str], web.StreamResponse]


def _state(request: web.Request) -> ProxyState:
    return request.app[STATE]


async def snapshot(state: ProxyState) -> dict[str, Any]:
    balance: str | None = None
    if state.ledger is not None and state.address is not None:
        try:
            balance = format_amount(await state.ledger.balance(state.address), BTT_LOCAL)
        except Exception as exc:  # the page still shows the rest
            balance = f"unknown ({type(exc).__name__})"
    channels = [] if state.manager is None else [
        {"channel_id": c.terms.channel_id.hex(), "payee": str(c.terms.payee),
         "deposit": format_amount(c.terms.deposit, c.terms.asset),
         "spent": format_amount(c.issued, c.terms.asset), "expires_at": c.terms.expires_at}
        for c in state.manager.channels()
    ]  # fmt: skip
    limits = state.book.limits
    return {
        "wallet": None if state.address is None else str(state.address),
        "balance": balance,
        "spent_today": format_amount(state.book.spent_today(), BTT_LOCAL),
        "per_site": {s: format_amount(a, BTT_LOCAL) for s, a in state.book.by_site().items()},
        "limits": {
            "per_request": None
            if limits.per_request is None
            else format_amount(limits.per_request, BTT_LOCAL),
            "per_day": None if limits.per_day is None else format_amount(limits.per_day, BTT_LOCAL),
        },
        "channels": channels,
        "edges": {e: {"ok": h.ok, "detail": h.detail} for e, h in state.health.items()},
        "requests": state.requests,
        "tunnels": {"opened": state.tunnels_opened, "paying": state.tunnels_paying},
        "mode": "intercept" if state.intercept else "tunnel",
        "recent": [{"site": site, "providers": providers} for site, providers in state.recent],
    }


def _per_mib(price: str | None) -> str:
    return "free" if price is None else format_amount(int(price), BTT_LOCAL)


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(_state(request)))


async def status_page(request: web.Request) -> web.Response:
    s = await snapshot(_state(request))
    sites = (
        "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in s["per_site"].items())
        or "<tr><td colspan=2>nothing yet</td></tr>"
    )
    chans = (
        "".join(
            f"<tr><td><code>{c['channel_id'][:16]}</code></td><td>{c['payee']}</td>"
            f"<td>{c['spent']} of {c['deposit']}</td></tr>"
            for c in s["channels"]
        )
        or "<tr><td colspan=3>none open</td></tr>"
    )
    edges = "".join(
        f"<tr><td>{html.escape(e)}</td><td>{'up' if h['ok'] else 'DOWN'}</td>"
        f"<td>{html.escape(h['detail'])}</td></tr>"
        for e, h in s["edges"].items()
    )
    recent = "".join(
        f"<tr><td>{html.escape(r['site'])}</td><td>{html.escape(url)}</td><td>{p['lane']}</td>"
        f"<td>{p['bytes'] / (1 << 20):.2f} MiB</td><td>{_per_mib(p['price_per_mib_paid'])}</td>"
        f"<td>{p['rate'] / (1 << 20):.2f} MiB/s</td></tr>"
        for r in reversed(s["recent"]) for url, p in r["providers"].items() if p["chunks"]
    ) or "<tr><td colspan=6>none yet</td></tr>"  # fmt: skip
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Atlas proxy</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50em;margin:2em auto}}
td{{padding:.2em .8em}}</style></head><body><h1>Atlas proxy</h1>
<p>Wallet <code>{s["wallet"]}</code>, balance <b>{s["balance"]}</b>.
Spent today <b>{s["spent_today"]}</b> (limits: per request {s["limits"]["per_request"]},
per day {s["limits"]["per_day"]}). Mode: {s["mode"]}. Requests: {s["requests"]}.</p>
<h2>Spent per site today</h2><table>{sites}</table>
<h2>Open channels</h2><table>{chans}</table>
<h2>Edges</h2><table>{edges}</table>
<h2>Recent downloads by provider</h2><table><tr><th>site</th><th>provider</th><th>lane</th>
<th>bytes</th><th>paid per MiB</th><th>rate</th></tr>{recent}</table>
<p><a href="/ca">Certificate for HTTPS interception</a> &middot;
<a href="/proxy.pac">PAC file</a> &middot; <a href="/status.json">JSON</a></p>
</body></html>"""
    return web.Response(text=body, content_type="text/html")


async def ca_page(request: web.Request) -> web.Response:
    state = _state(request)
    if state.ca_cert is None or not state.ca_cert.exists():
        text = "<p>This proxy tunnels HTTPS end to end: there is no certificate to install.</p>"
    else:
        text = """<p>This proxy runs with <code>--intercept</code>: it opens HTTPS to fetch it
through paid edges, so your browser must trust its certificate authority.</p>
<ol><li>Download <a href="/ca.pem">ca.pem</a>.</li>
<li>Firefox: Settings, Privacy &amp; Security, Certificates, View Certificates, Authorities,
Import; tick "Trust this CA to identify websites".</li>
<li>Chromium/Chrome on Linux: <code>certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n atlas
-i ca.pem</code>.</li>
<li>Debian/Ubuntu system-wide: copy to
<code>/usr/local/share/ca-certificates/atlas.crt</code>, run
<code>update-ca-certificates</code>.</li>
<li>Android/iOS: open the file on the device and install it as a CA certificate
(iOS: then enable full trust in Settings, General, About, Certificate Trust Settings).</li></ol>
<p>Remove it when you stop using Atlas: anyone holding its key can impersonate sites.</p>"""
    return web.Response(text=f"<!doctype html><title>Atlas CA</title><h1>Atlas CA</h1>{text}",
                        content_type="text/html")  # fmt: skip


async def ca_pem(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    if state.ca_cert is None or not state.ca_cert.exists():
        raise web.HTTPNotFound(text="no CA: this proxy does not intercept HTTPS")
    disposition = 'attachment; filename="atlas-ca.pem"'
    return web.Response(body=state.ca_cert.read_bytes(), content_type="application/x-pem-file",
                        headers={"Content-Disposition": disposition})  # fmt: skip


async def pac_file(request: web.Request) -> web.Response:
    proxy = _state(request).proxy_url.removeprefix("http://")
    text = f"""function FindProxyForURL(url, host) {{
  if (isPlainHostName(host) || host === "localhost" || shExpMatch(host, "127.*"))
    return "DIRECT";
  return "PROXY {proxy}";
}}
"""
    return web.Response(text=text, content_type="application/x-ns-proxy-autoconfig")


async def metrics(request: web.Request) -> web.Response:
    state = _state(request)
    registry = CollectorRegistry()
    Gauge("atlas_proxy_requests", "requests relayed", registry=registry).set(state.requests)
    Gauge("atlas_proxy_spent_today", "base units spent today",
          registry=registry).set(state.book.spent_today())  # fmt: skip
    up = Gauge("atlas_proxy_edge_up", "edge health", ["edge"], registry=registry)
    for edge, health in state.health.items():
        up.labels(edge).set(1 if health.ok else 0)
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
