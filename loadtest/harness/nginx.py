"""nginx as a loopback reference server (a child process, stopped by PID)."""

from __future__ import annotations

import shutil
from pathlib import Path

from loadtest.harness.children import BenchError, Proc, Processes, free_port

NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
{http_extra}    default_type application/octet-stream;
    types {{ }}
    client_body_temp_path {root}/tmp-body;
    proxy_temp_path {root}/tmp-proxy;
    fastcgi_temp_path {root}/tmp-fastcgi;
    uwsgi_temp_path {root}/tmp-uwsgi;
    scgi_temp_path {root}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
{location}    }}
}}
"""
PLAIN_LOCATION = "        location / { }\n"
# An origin whose answers edges cache (max-age=3600: a second /v1/fetch of a URL is a HIT).
CACHEABLE_LOCATION = "        location / { expires 1h; }\n"
MANY_REQUESTS = "    keepalive_requests 100000000;\n"  # load runs: keep-alive never closed


def start_nginx(procs: Processes, root: Path, *, workers: int = 1, http_extra: str = "",
                location: str = PLAIN_LOCATION) -> Proc:  # fmt: skip
    """nginx (sendfile) on a free loopback port serving ``root/www``; a child of this process."""
    port, conf = free_port(), root / "nginx.conf"
    text = NGINX_CONF.format(workers=workers, root=root, port=port, http_extra=http_extra,
                             location=location)  # fmt: skip
    conf.write_text(text, encoding="utf-8")
    for path in [root, *root.rglob("*")]:  # workers run as an unprivileged user under root
        path.chmod(0o755 if path.is_dir() else 0o644)
    argv = [shutil.which("nginx") or "nginx", "-e", str(root / "nginx-error.log"), "-p", str(root)]
    try:
        return procs.start("nginx", [*argv, "-c", str(conf)], port=port)
    except BenchError as exc:
        error_log = (root / "nginx-error.log").read_text(encoding="utf-8", errors="replace")
        raise BenchError(f"{exc}\n{error_log[-2000:]}") from None
