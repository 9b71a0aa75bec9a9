"""The proxy's own pages: status (proxy/status_page.py), the CA certificate with install
steps (as mitmproxy does at mitm.it), a PAC file, metrics.

They are reachable through the proxy at ``http://atlas.proxy/`` and directly
on the API port.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from proxy.failures import Failure
from proxy.state import STATE, ProxyState
from proxy.status_page import status_json, status_page

Render = Callable[[Failure, str], web.StreamResponse]
__all__ = ["Render", "ca_page", "ca_pem", "metrics", "pac_file", "status_json", "status_page"]


def _state(request: web.Request) -> ProxyState:
    return request.app[STATE]


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
