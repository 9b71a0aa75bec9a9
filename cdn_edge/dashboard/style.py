"""The status page's stylesheet, inline: light and dark, one column on a phone."""

CSS = """
:root{color-scheme:light dark;--fg:#1d2330;--bg:#f4f6fa;--box:#fff;--mute:#6b7385;
--line:#dde2ec;--ok:#1f9d55;--bad:#d64545;--warn:#c48a00}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9f0;--bg:#12151c;--box:#1b202a;
--mute:#9aa3b5;--line:#2c3342}}
*{box-sizing:border-box}
body{margin:0;padding:12px;font:15px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--fg);background:var(--bg)}
header h1{margin:0 0 4px;font-size:1.4em}
.ids,.stamp{margin:2px 0;color:var(--mute);font-size:.85em;overflow-wrap:anywhere}
code{font-size:.9em;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px;
margin:12px 0}
.card,.box{background:var(--box);border:1px solid var(--line);border-radius:10px;
padding:10px 12px}
.card h2,.box h2{margin:0 0 6px;font-size:.8em;font-weight:600;color:var(--mute);
text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:1.25em;font-weight:600;overflow-wrap:anywhere}
.note{color:var(--mute);font-size:.85em}
meter{width:60%;vertical-align:middle}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:10px}
.plot{width:100%;height:auto;background:var(--box);border:1px solid var(--line);
border-radius:10px}
.plot text{font-size:15px;fill:var(--mute)}
.plot .plot-title{fill:var(--fg);font-weight:600}
.plot .topline{stroke:var(--line);stroke-dasharray:4 4}
.plot .base{stroke:var(--mute)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:10px;
margin:10px 0}
section.box{margin:10px 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid var(--line);
vertical-align:top;font-size:.9em}
th{font-weight:500;color:var(--mute)}
.scroll{overflow-x:auto}
.channels td{white-space:nowrap}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
footer{margin:14px 0;color:var(--mute);font-size:.85em}
footer a{color:inherit}
"""
