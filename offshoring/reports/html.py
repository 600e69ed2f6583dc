"""``reports/index.html``: every table and figure on one page, readable offline.

Tables are inline HTML; figures are ``<img>`` elements with relative links to the
PNG (and a link to the SVG) next to the page; CSS is inline; there is no script
and no external resource, so the folder can be zipped and opened anywhere.
Entries come from the writers' `OutputRecord`s, or, when none are passed, from
the ``*.provenance.json`` sidecars in the folder (so an index asset running in
its own process rebuilds the page from disk). The origin of the data (`DataSource`)
is passed in: on synthetic data a banner at the top says so, and an output whose
own provenance disagrees is flagged.
"""

from __future__ import annotations

import html as _html
import json
from pathlib import Path
from typing import Any, Iterable

from offshoring.reports.provenance import code_version_text
from offshoring.reports.render import OutputRecord, read_records, to_html, write_text
from offshoring.reports.source import DataSource

INDEX = "index.html"

_CSS = """
body { font-family: Georgia, 'DejaVu Serif', serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem;
     border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
nav ul { columns: 2; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
table.report-table th, table.report-table td { padding: .2rem .6rem; }
table.report-table thead tr:first-child th { border-top: 2px solid #222; }
table.report-table thead tr:last-child th { border-bottom: 1px solid #222; }
table.report-table tbody tr:last-child th, table.report-table tbody tr:last-child td
  { border-bottom: 2px solid #222; }
table.report-table td { text-align: right; font-variant-numeric: tabular-nums; }
table.report-table th.stub { text-align: left; font-weight: normal; }
table.report-table thead th { text-align: center; }
table.report-table tr.rule-above th, table.report-table tr.rule-above td
  { border-top: 1px solid #222; }
table.report-table tfoot td { text-align: left; font-size: .8rem; color: #555; }
table.kv th { text-align: left; padding-right: 1rem; vertical-align: top; font-weight: normal;
              color: #555; }
table.kv td { font-family: monospace; font-size: .85rem; word-break: break-all; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .files, .sdc { font-size: .85rem; color: #555; }
details { margin: .5rem 0; } summary { cursor: pointer; color: #2b6ca3; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .8rem; }
.banner { border: 2px solid #b00020; background: #fdecee; color: #6b0013; padding: .7rem 1rem;
          font-weight: bold; margin: 1rem 0; }
.origin { display: inline-block; font-size: .75rem; padding: 0 .4rem; border-radius: .2rem;
          background: #fdecee; color: #6b0013; border: 1px solid #b00020; }
"""


def _e(text: Any) -> str:
    return _html.escape("" if text is None else str(text))


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


def _files(record: OutputRecord) -> str:
    links = [f'<a href="{_e(f)}">{_e(f)}</a>' for f in record.files]
    links.append(f'<a href="{_e(record.sidecar)}">{_e(record.sidecar)}</a>')
    return '<p class="files">Files: ' + " · ".join(links) + "</p>"


def _sdc_line(record: OutputRecord) -> str:
    s = record.sdc_summary or {}
    if "exempt" in s:
        return f'<p class="sdc">Disclosure control: exempt ({_e(s["exempt"])}).</p>'
    if not s:
        return ""
    by = s.get("by_rule", {})
    rules = s.get("rules", {})
    return (
        f'<p class="sdc">Disclosure control (min. {_e(rules.get("min_firms"))} firms, dominance '
        f'{_e(rules.get("dominance_share"))}): {_e(s.get("n_suppressed", 0))} of '
        f'{_e(s.get("n_cells", 0))} cells suppressed — threshold {_e(by.get("threshold", 0))}, '
        f'dominance {_e(by.get("dominance", 0))}, secondary {_e(by.get("secondary", 0))}.</p>'
    )


def _inputs_table(prov: dict[str, Any]) -> str:
    inputs = prov.get("inputs") or []
    if not inputs:
        return "<p>No input files recorded.</p>"
    rows = "".join(
        f"<tr><th>{_e(i.get('path'))}</th><td>{_e(i.get('sha256') or i.get('error'))}</td></tr>"
        for i in inputs
    )
    return f'<table class="kv">{rows}</table>'


def _provenance_block(prov: dict[str, Any] | None, *, full: bool) -> str:
    if not prov:
        return "<p>No provenance recorded.</p>"
    parts = [
        _kv(
            [
                ("run id", prov.get("run_id")),
                ("time (UTC)", prov.get("created_utc")),
                ("data", prov.get("data")),
                ("source", prov.get("source")),
                ("code version", code_version_text(prov)),
                ("specification (SHA-256)", prov.get("spec_sha256")),
                ("seed", prov.get("seed")),
                ("python", prov.get("python")),
            ]
        ),
        "<h4>Input files (SHA-256)</h4>",
        _inputs_table(prov),
    ]
    if full:
        packages = prov.get("packages") or {}
        parts += [
            "<h4>Package versions</h4>",
            _kv(sorted((k, v if v is not None else "not installed") for k, v in packages.items())),
            "<h4>Specification files</h4>",
            _kv(sorted((prov.get("spec_files") or {}).items())),
            "<h4>Effective specification</h4>",
            f"<pre>{_e(json.dumps(prov.get('spec', {}), indent=2, default=str, sort_keys=True))}</pre>",
            "<h4>Paths</h4>",
            _kv(sorted((prov.get("paths") or {}).items())),
        ]
    return "\n".join(parts)


def _data_of(record: OutputRecord) -> str | None:
    return (record.provenance or {}).get("data")


def _entry(record: OutputRecord, source: DataSource) -> str:
    out = [f'<section id="{_e(record.name)}">', f"<h2>{_e(record.title)}</h2>"]
    data = _data_of(record)
    if data is not None and data != source.data:
        out.append(f'<p class="origin">written from {_e(data)} data, unlike this page\'s run</p>')
    elif data == "synthetic":
        out.append('<p class="origin">synthetic data</p>')
    if record.kind == "figure":
        png = next((f for f in record.files if f.endswith(".png")), None)
        svg = next((f for f in record.files if f.endswith(".svg")), None)
        img = png or svg
        out.append("<figure>")
        if img:
            target = svg or img
            out.append(f'<a href="{_e(target)}"><img src="{_e(img)}" alt="{_e(record.title)}"></a>')
        if record.caption:
            out.append(f"<figcaption>{_e(record.caption)}</figcaption>")
        out.append("</figure>")
        if record.display is not None:
            out.append(f"<details><summary>Data: {_e(record.display.title)}</summary>")
            out.append(to_html(record.display, caption=False))
            out.append("</details>")
    else:
        if record.display is not None:
            out.append(to_html(record.display, caption=False))
        if record.caption:
            out.append(f"<p class=\"files\">{_e(record.caption)}</p>")
    out.append(_files(record))
    out.append(_sdc_line(record))
    out.append("<details><summary>Provenance of this output</summary>")
    out.append(_provenance_block(record.provenance, full=False))
    out.append("</details>")
    out.append("</section>")
    return "\n".join(out)


def render_index(
    entries: list[OutputRecord],
    provenance: dict[str, Any] | None,
    *,
    source: DataSource,
    title: str | None = None,
) -> str:
    if not isinstance(source, DataSource):
        raise TypeError("the index page needs its DataSource (synthetic or real data)")
    title = title or "Offshore outsourcing and backshoring in Italian clothing and footwear: reports"
    entries = sorted(entries, key=lambda r: (r.order, r.name))
    if provenance is None:
        provenance = next((r.provenance for r in entries if r.provenance), None)
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
    )
    run = provenance or {}
    banner = source.banner()
    mixed = sorted({d for d in (_data_of(r) for r in entries) if d is not None and d != source.data})
    body = [
        f"<h1>{_e(title)}</h1>",
        *([f'<p class="banner" id="synthetic-banner">{_e(banner)}</p>'] if banner else []),
        *([f'<p class="banner" id="mixed-banner">Some outputs below were written from {_e(", ".join(mixed))} '
           f"data, this page from {_e(source.data)} data: rerun them before reading them together.</p>"]
          if mixed else []),
        "<p>Reproduction of Canello &amp; Pavone, <em>Offshore outsourcing and backshoring "
        "patterns in the Italian manufacturing sector</em>. "
        f"Run {_e(run.get('run_id'))}, {_e(run.get('created_utc'))}, code "
        f"{_e(code_version_text(run) if run else 'unknown')}.</p>",
        "<nav><ul>",
        *(f'<li><a href="#{_e(r.name)}">{_e(r.title)}</a></li>' for r in entries),
        '<li><a href="#provenance">Provenance</a></li>',
        "</ul></nav>",
        *(_entry(r, source) for r in entries),
        '<section id="provenance"><h2>Provenance</h2>',
        _provenance_block(provenance, full=True),
        "</section>",
    ]
    return head + "\n".join(body) + "\n</body>\n</html>\n"


def write_index(
    reports_dir: str | Path,
    entries: list[OutputRecord] | None = None,
    provenance: dict[str, Any] | None = None,
    *,
    source: DataSource,
    title: str | None = None,
) -> Path:
    """Write ``<reports_dir>/index.html``; entries default to the sidecars found there."""
    reports_dir = Path(reports_dir)
    if entries is None:
        entries = read_records(reports_dir)
    path = reports_dir / INDEX
    write_text(path, render_index(list(entries), provenance, source=source, title=title))
    return path
