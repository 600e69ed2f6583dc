"""File writers in the contract's conventions, byte-identical for identical inputs.

CSV: `;` separator, decimal comma, no thousands separator (AIDA CSV: `.` thousands and
`n.d.` / `n.s.` cells), dates dd/mm/yyyy, empty field for missing, cp1252 by default.
Compressed CSV uses a gzip header without timestamp or name; the xlsx has a fixed
creation date (xlsxwriter's in-memory mode also fixes the zip entries' timestamps).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from pathlib import Path

import numpy as np
import polars as pl

from offshoring.truth import MARKER as GENERATOR_MARK

FIXED_CREATED = dt.datetime(2013, 6, 30, 12, 0, 0)


def _csv_text(df: pl.DataFrame, float_precision: int = 2) -> str:
    return df.write_csv(separator=";", decimal_comma=True, float_precision=float_precision,
                        date_format="%d/%m/%Y", null_value="", line_terminator="\n")


def write_csv(df: pl.DataFrame, path: Path, encoding: str = "cp1252", compress: bool = False,
              float_precision: int = 2) -> Path:
    data = _csv_text(df, float_precision).encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
            gz.write(data)
        data = buf.getvalue()
    path.write_bytes(data)
    return path


def write_survey(df: pl.DataFrame, out_dir: Path, year: int, fmt: str, encoding: str) -> Path:
    folder = out_dir / "survey"
    if fmt == "csv":
        return write_csv(df, folder / f"survey_{year}.csv", encoding)
    if fmt == "csv.gz":
        return write_csv(df, folder / f"survey_{year}.csv.gz", encoding, compress=True)
    if fmt == "parquet":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"survey_{year}.parquet"
        df.write_parquet(path, compression="zstd", statistics=True,
                         metadata={"generator": GENERATOR_MARK})  # a copy without truth.json still says so
        return path
    raise ValueError(f"unknown survey format {fmt!r} (csv, csv.gz, parquet)")


def _aida_frame(firms: pl.DataFrame, years, turnover: np.ndarray, employees: np.ndarray,
                ns: np.ndarray) -> tuple[list[str], list[list]]:
    header = ["tax_code", "company_name", "province", "ateco_2007"]
    header += [f"turnover_{y}" for y in years] + [f"employees_{y}" for y in years]
    rows = []
    static = firms.select("tax_code", "company_name", "province", "ateco_2007").rows()
    for r, st in enumerate(static):
        vals: list = list(st)
        for k in range(len(years)):
            v = turnover[r, k]
            vals.append("n.d." if np.isnan(v) else int(v))
        for k in range(len(years)):
            v = employees[r, k]
            vals.append("n.s." if ns[r, k] else ("n.d." if np.isnan(v) else int(v)))
        rows.append(vals)
    return header, rows


def write_aida_xlsx(path: Path, firms, years, turnover, employees, ns) -> Path:
    import xlsxwriter

    header, rows = _aida_frame(firms, years, turnover, employees, ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"in_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"title": "AIDA export", "author": GENERATOR_MARK, "created": FIXED_CREATED})
    ws = wb.add_worksheet("Risultati")
    bold = wb.add_format({"bold": True})
    ws.write_row(0, 0, header, bold)
    for r, vals in enumerate(rows, start=1):
        for c, v in enumerate(vals):
            if isinstance(v, str):
                ws.write_string(r, c, v)
            else:
                ws.write_number(r, c, v)
    ws.freeze_panes(1, 0)
    wb.close()
    return path


def _thousands(v: int) -> str:
    s = f"{abs(int(v)):,}".replace(",", ".")
    return "-" + s if v < 0 else s


def write_aida_csv(path: Path, firms, years, turnover, employees, ns, encoding: str = "cp1252") -> Path:
    header, rows = _aida_frame(firms, years, turnover, employees, ns)
    lines = [";".join(header)]
    for vals in rows:
        cells = []
        for c, v in enumerate(vals):
            if isinstance(v, str):
                cells.append(f'"{v}"' if (";" in v or '"' in v) else v)
            else:
                cells.append(_thousands(v))
        lines.append(";".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path
