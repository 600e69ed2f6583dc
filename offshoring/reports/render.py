"""Display tables and their writers: Markdown, LaTeX (booktabs), CSV, HTML.

A `DisplayTable` is what a reader sees: header rows (with column spans), a stub
column of labels, body cells already formatted as text, and notes. Builders in
`tables` and `figures` make one from a `ProtectedTable` (or a model's results),
so the writers here never see a confidential value. `write_table` refuses a table
that is neither protected nor declared exempt from disclosure control, and runs
`sdc.assert_safe` before writing anything.

Every output gets a sidecar ``<name>.provenance.json``: the output's files with
their SHA-256, its display (so `html.write_index` can rebuild the page from disk),
the disclosure-control summary and the run's provenance.
"""

from __future__ import annotations

import csv
import html as _html
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Iterable

from offshoring.reports import sdc

SIDECAR_SUFFIX = ".provenance.json"
# A cell that does not apply: a statistic not collected for the group (left empty in the
# paper), a group without firms, a term not in a model. Notes say which, when one is shown.
NO_DATA = "–"


# --------------------------------------------------------------------------- numbers


def fmt_number(value: float | None, digits: int = 0, *, percent: bool = False) -> str:
    """``1234567.8 -> '1,234,568'``; None or NaN -> ''; infinities as ``inf``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if math.isinf(float(value)):
        return ("-" if value < 0 else "") + "inf"
    # Half away from zero (12.5 -> 13), as a reader expects, not Python's half-even.
    q = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{q:,.{digits}f}"
    if text.startswith("-") and float(text.replace(",", "")) == 0:
        text = text[1:]
    return text + ("%" if percent else "")


def stars(pvalue: float | None) -> str:
    """*** p<0.01, ** p<0.05, * p<0.1."""
    if pvalue is None or (isinstance(pvalue, float) and math.isnan(pvalue)):
        return ""
    if pvalue < 0.01:
        return "***"
    if pvalue < 0.05:
        return "**"
    if pvalue < 0.1:
        return "*"
    return ""


# --------------------------------------------------------------------------- model


@dataclass
class DisplayRow:
    label: str
    cells: list[str]
    rule_above: bool = False
    # Machine-readable values for the CSV (numbers unformatted, marker for
    # suppressed cells); None -> the formatted cells are written.
    raw: list[Any] | None = None


@dataclass
class DisplayTable:
    name: str
    title: str
    # Header rows over the data columns: (text, span); spans of each row add up
    # to the number of data columns.
    header: list[list[tuple[str, int]]]
    rows: list[DisplayRow]
    stub: str = ""
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    sdc: sdc.ProtectedTable | None = None
    sdc_exempt: str | None = None

    @property
    def n_columns(self) -> int:
        return sum(span for _, span in self.header[-1]) if self.header else 0

    def column_names(self) -> list[str]:
        """Flattened header, one name per data column (``"Clothing: Offshoring"``)."""
        names = [[] for _ in range(self.n_columns)]
        for hrow in self.header:
            j = 0
            for text, span in hrow:
                for k in range(j, j + span):
                    if text and (not names[k] or names[k][-1] != text):
                        names[k].append(text)
                j += span
        return [": ".join(parts) for parts in names]

    def row(self, label: str) -> DisplayRow:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def validate(self) -> None:
        n = self.n_columns
        for i, hrow in enumerate(self.header):
            if sum(span for _, span in hrow) != n:
                raise ValueError(f"{self.name}: header row {i} spans do not add up to {n}")
        for r in self.rows:
            if len(r.cells) != n:
                raise ValueError(f"{self.name}: row {r.label!r} has {len(r.cells)} cells, expected {n}")
            if r.raw is not None and len(r.raw) != n:
                raise ValueError(f"{self.name}: row {r.label!r} raw values do not match the columns")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "header": [[[t, s] for t, s in hrow] for hrow in self.header],
            "stub": self.stub,
            "rows": [asdict(r) for r in self.rows],
            "notes": list(self.notes),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DisplayTable":
        return cls(
            name=d["name"],
            title=d["title"],
            header=[[(t, int(s)) for t, s in hrow] for hrow in d["header"]],
            rows=[DisplayRow(**r) for r in d["rows"]],
            stub=d.get("stub", ""),
            notes=list(d.get("notes", [])),
            source=d.get("source"),
            sdc_exempt="rebuilt from a sidecar (checked when written)",
        )


def all_notes(table: DisplayTable) -> list[str]:
    notes = list(table.notes)
    if table.source:
        notes.insert(0, f"Source: {table.source}")
    return notes


# --------------------------------------------------------------------------- markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: DisplayTable) -> str:
    table.validate()
    cols = [table.stub or " "] + table.column_names()
    lines = [f"**{_md_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * table.n_columns) + "|")
    for r in table.rows:
        lines.append("| " + " | ".join(_md_escape(c) for c in [r.label, *r.cells]) + " |")
    notes = all_notes(table)
    if notes:
        lines.append("")
        lines.extend(f"{_md_escape(n)}  " for n in notes)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- latex

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
    "—": "---",
}
_STARS = re.compile(r"^(.*?)(\*{1,3})$")


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_cell(text: str) -> str:
    m = _STARS.match(text)
    if m and m.group(1):
        return f"{latex_escape(m.group(1))}$^{{{m.group(2)}}}$"
    return latex_escape(text)


def to_latex(table: DisplayTable) -> str:
    """A booktabs ``tabular`` ready for ``\\input`` (no float, no preamble).

    Needs ``\\usepackage{booktabs}`` in the including document. The title is a
    comment so the including document sets its own caption.
    """
    table.validate()
    n = table.n_columns
    out = [f"% {table.title}", f"\\begin{{tabular}}{{l{'r' * n}}}", "\\toprule"]
    for i, hrow in enumerate(table.header):
        last = i == len(table.header) - 1
        parts = [latex_escape(table.stub) if last else ""]
        rules = []
        j = 2
        for text, span in hrow:
            if span == 1:
                parts.append(latex_escape(text))
            else:
                parts.append(f"\\multicolumn{{{span}}}{{c}}{{{latex_escape(text)}}}")
                if text:
                    rules.append(f"\\cmidrule(lr){{{j}-{j + span - 1}}}")
            j += span
        out.append(" & ".join(parts) + " \\\\")
        if rules and not last:
            out.append("".join(rules))
    out.append("\\midrule")
    for r in table.rows:
        if r.rule_above:
            out.append("\\midrule")
        out.append(" & ".join([latex_escape(r.label)] + [_latex_cell(c) for c in r.cells]) + " \\\\")
    out.append("\\bottomrule")
    for note in all_notes(table):
        out.append(f"\\multicolumn{{{n + 1}}}{{l}}{{\\footnotesize {latex_escape(note)}}} \\\\")
    out.append("\\end{tabular}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- csv


def to_csv(table: DisplayTable) -> str:
    """One header line (flattened column names), one line per row.

    Numbers are written unformatted where the builder supplied raw values;
    suppressed cells hold the marker, blank cells are empty. A table with a source line
    ends with a ``data_source`` column holding it on every row: a CSV opened on its own,
    or pasted into another file, still says whether its numbers are synthetic.
    """
    table.validate()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    tail = [table.source] if table.source else []
    w.writerow([table.stub or "row"] + table.column_names() + (["data_source"] if tail else []))
    for r in table.rows:
        values = r.raw if r.raw is not None else r.cells
        w.writerow([r.label] + ["" if v is None else v for v in values] + tail)
    return buf.getvalue()


# --------------------------------------------------------------------------- html


def to_html(table: DisplayTable, *, caption: bool = True) -> str:
    """An HTML ``<table>`` fragment (escaped; no scripts, no external resources)."""
    table.validate()
    e = _html.escape
    out = ['<table class="report-table">']
    if caption:
        out.append(f"<caption>{e(table.title)}</caption>")
    out.append("<thead>")
    for i, hrow in enumerate(table.header):
        last = i == len(table.header) - 1
        cells = [f'<th class="stub">{e(table.stub) if last else ""}</th>']
        for text, span in hrow:
            attr = f' colspan="{span}"' if span > 1 else ""
            cells.append(f"<th{attr}>{e(text)}</th>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</thead><tbody>")
    for r in table.rows:
        cls = ' class="rule-above"' if r.rule_above else ""
        cells = [f'<th class="stub" scope="row">{e(r.label)}</th>'] + [
            f"<td>{e(c)}</td>" for c in r.cells
        ]
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody>")
    notes = all_notes(table)
    if notes:
        out.append(
            f'<tfoot><tr><td colspan="{table.n_columns + 1}">'
            + "<br>".join(e(n) for n in notes)
            + "</td></tr></tfoot>"
        )
    out.append("</table>")
    return "\n".join(out)


# --------------------------------------------------------------------------- writing


@dataclass
class OutputRecord:
    """One written output (a table or a figure), as listed on the index page."""

    name: str
    title: str
    kind: str  # "table" | "figure"
    files: list[str]  # names relative to the reports folder
    display: DisplayTable | None = None  # the table, or a figure's data
    caption: str = ""
    order: int = 100
    sdc_summary: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    file_sha256: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # e.g. a figure's year, provinces drawn

    @property
    def sidecar(self) -> str:
        return self.name + SIDECAR_SUFFIX

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": {
                "name": self.name,
                "title": self.title,
                "kind": self.kind,
                "caption": self.caption,
                "order": self.order,
                "files": [{"file": f, "sha256": self.file_sha256.get(f)} for f in self.files],
                "info": self.info,
            },
            "display": self.display.to_dict() if self.display is not None else None,
            "sdc": self.sdc_summary,
            "provenance": self.provenance,
        }

    def metadata(self, reports_dir: str | Path | None = None) -> dict[str, Any]:
        """Flat asset metadata: files and their SHA-256, disclosure control, provenance.

        Values are text, numbers or JSON-ready dicts (the asset wraps dicts in
        ``MetadataValue.json``; this module never imports Dagster).
        """
        from offshoring.reports.provenance import metadata as provenance_metadata

        base = Path(reports_dir) if reports_dir is not None else None
        s = self.sdc_summary or {}
        out: dict[str, Any] = {
            "title": self.title,
            "files": [str(base / f) if base else f for f in self.files + [self.sidecar]],
            "file_sha256": dict(self.file_sha256),
            "sdc_suppressed": int(s.get("n_suppressed", 0)),
            "sdc": {k: v for k, v in s.items() if k != "suppressed_cells"},
        }
        if self.info:
            out["info"] = dict(self.info)
        if self.display is not None and self.display.source:
            out["source"] = self.display.source
        if self.provenance:
            out.update(provenance_metadata(self.provenance))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OutputRecord":
        o = d["output"]
        return cls(
            name=o["name"],
            title=o["title"],
            kind=o["kind"],
            files=[f["file"] for f in o["files"]],
            display=DisplayTable.from_dict(d["display"]) if d.get("display") else None,
            caption=o.get("caption", ""),
            order=int(o.get("order", 100)),
            sdc_summary=d.get("sdc"),
            provenance=d.get("provenance"),
            file_sha256={f["file"]: f["sha256"] for f in o["files"] if f.get("sha256")},
            info=dict(o.get("info") or {}),
        )


def write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def check_disclosure(table: DisplayTable) -> None:
    """Refuse a table that is neither protected nor declared exempt; re-check a protected one."""
    if table.sdc is not None:
        sdc.assert_safe(table.sdc)
    elif not table.sdc_exempt:
        raise ValueError(
            f"{table.name}: refusing to write a table that has not been through "
            "disclosure control (build it from sdc.protect, or set sdc_exempt with a reason)"
        )


def write_sidecar(record: OutputRecord, reports_dir: Path) -> Path:
    from offshoring.reports.provenance import file_sha256

    reports_dir = Path(reports_dir)
    record.file_sha256 = {f: file_sha256(reports_dir / f) for f in record.files}
    path = reports_dir / record.sidecar
    write_text(path, json.dumps(record.to_dict(), indent=2, default=str, ensure_ascii=False) + "\n")
    return path


def write_table(
    table: DisplayTable,
    reports_dir: str | Path,
    provenance: dict[str, Any] | None = None,
    *,
    order: int = 100,
    caption: str = "",
) -> OutputRecord:
    """Write ``<name>.md``, ``<name>.tex``, ``<name>.csv`` and the sidecar JSON."""
    check_disclosure(table)
    reports_dir = Path(reports_dir)
    texts = {
        f"{table.name}.md": to_markdown(table),
        f"{table.name}.tex": to_latex(table),
        f"{table.name}.csv": to_csv(table),
    }
    for fname, text in texts.items():
        write_text(reports_dir / fname, text)
    record = OutputRecord(
        name=table.name,
        title=table.title,
        kind="table",
        files=list(texts),
        display=table,
        caption=caption,
        order=order,
        sdc_summary=table.sdc.summary() if table.sdc is not None else {"exempt": table.sdc_exempt},
        provenance=provenance,
    )
    write_sidecar(record, reports_dir)
    return record


def read_records(reports_dir: str | Path) -> list[OutputRecord]:
    """Every output whose sidecar is in `reports_dir`, in index order."""
    records = []
    for path in sorted(Path(reports_dir).glob("*" + SIDECAR_SUFFIX)):
        with open(path, encoding="utf-8") as fh:
            records.append(OutputRecord.from_dict(json.load(fh)))
    return sorted(records, key=lambda r: (r.order, r.name))


def published_cell(
    table: sdc.ProtectedTable, row: str, column: str, fmt: Any
) -> tuple[str, Any]:
    """(display text, raw CSV value) of a protected cell: the marker when suppressed, "–"
    when it does not apply (blank by design, or no firm behind it), else the value."""
    if table.is_suppressed(row, column):
        return table.rules.marker, table.rules.marker
    if table.is_blank(row, column):
        return NO_DATA, None
    value = table.published_value(row, column)
    if value is None:
        return NO_DATA, None
    return fmt(value), (int(value) if float(value).is_integer() else round(value, 6))


def rows_from_protected(
    table: sdc.ProtectedTable,
    labels: Iterable[tuple[str, str]],
    fmt_by_row: dict[str, Any] | None = None,
    default_fmt: Any = None,
) -> list[DisplayRow]:
    """Display rows (label, cells across the table's columns) from a protected table."""
    default_fmt = default_fmt or (lambda v: fmt_number(v, 2))
    out = []
    for key, label in labels:
        fmt = (fmt_by_row or {}).get(key, default_fmt)
        pairs = [published_cell(table, key, c, fmt) for c in table.columns]
        out.append(DisplayRow(label=label, cells=[p[0] for p in pairs], raw=[p[1] for p in pairs]))
    return out


def legend_notes(
    table: sdc.ProtectedTable,
    rows: Iterable[DisplayRow],
    *,
    not_applicable: str | None = None,
) -> list[str]:
    """The notes explaining the symbols a table shows, and only those: the suppression
    marker when a cell is suppressed (else a line saying none needed to be), and "–" when
    a cell shows it (`not_applicable`: what "–" means beyond the protected table's own
    blank and empty cells)."""
    rows = list(rows)
    notes = [table.rules.note() if table.suppressed else table.rules.none_suppressed_note()]
    if any(c == NO_DATA for r in rows for c in r.cells):
        reasons = []
        keys = [k for k in table.table.keys() if not table.is_suppressed(*k)]
        if not_applicable:
            reasons.append(not_applicable)
        elif any(table.is_blank(*k) for k in keys):
            reasons.append("does not apply (the statistic is not collected for this type of firm)")
        if any(not table.is_blank(*k) and table.published_value(*k) is None for k in keys):
            reasons.append("no firm in the group")
        notes.append(f"{NO_DATA}: " + "; ".join(reasons or ["does not apply"]) + ".")
    return notes


def disclosure_violations(table: DisplayTable) -> list[sdc.Violation]:
    """What would make writing `table` unsafe: its protected cells' violations, or the
    table itself when it is neither protected nor declared exempt."""
    if table.sdc is not None:
        return sdc.violations(table.sdc)
    if not table.sdc_exempt:
        return [sdc.Violation(table.name, ("*", "*"), "unprotected",
                              "not through disclosure control and not declared exempt")]
    return []
