"""Small raw files in every format the data contract allows, written by the tests.

Rows are plain dicts with canonical names and Python values; the writers render
them in the Italian or plain conventions, in cp1252 or UTF-8, as CSV, gzip,
Parquet or xlsx. Codes are valid (check characters computed by
`offshoring.taxcode`) unless a test breaks them on purpose.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import random
from pathlib import Path
from typing import Any

import polars as pl

from offshoring import taxcode
from offshoring.readers.survey import SURVEY_COLUMNS

KEY = b"test-key-0123456789abcdef-not-secret"

# birthplaces: Italian municipalities (cadastral codes) and foreign countries (Z...)
_PLACES = ["F205", "H501", "G273", "Z210", "Z330", "L219"]


def company_code(i: int) -> str:
    return taxcode.make_company_code(f"{(i * 7919 + 1000003) % 10**10:010d}")


def personal_code(i: int, foreign: bool = False) -> str:
    rng = random.Random(i)
    letters = "BCDFGLMNPRSTVZ"
    sur = "".join(rng.choice(letters) for _ in range(3))
    name = "".join(rng.choice(letters) for _ in range(3))
    place = "Z210" if foreign else rng.choice(["F205", "H501", "G273", "L219"])
    return taxcode.make_personal_code(sur, name, 1950 + i % 40, 1 + i % 12, 1 + i % 28, bool(i % 2), place)


def survey_rows(n: int, year: int, *, seed: int = 0, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed * 1_000 + year)
    rows = []
    areas = ["local", "provincial", "regional", "national", "international"]
    for k in range(n):
        i = start + k
        if i % 10 == 3:
            code = personal_code(i, foreign=(i % 20 == 3))
        else:
            code = company_code(i)
        employees = round(rng.uniform(1, 40), 1)
        turnover = round(rng.uniform(100_000, 5_000_000), 2)
        rows.append({
            "tax_code": code,
            "year": year,
            "filing_date": dt.date(year + 1, 1 + i % 9, 1 + i % 27),
            "ateco_2007": rng.choice(["141310", "141400", "152010", "141900"]),
            "municipality_code": rng.choice(["001272", "015146", "048017", "097042", "058091"]),
            "turnover": turnover,
            "employees": employees,
            "value_added": round(turnover * rng.uniform(0.1, 0.4), 2),
            "wage_costs": round(employees * rng.uniform(15_000, 35_000), 2),
            "net_income": round(rng.uniform(-50_000, 200_000), 2),
            "roi": round(rng.uniform(-10, 25), 2),
            "export_share": round(rng.uniform(0, 100), 1),
            "credit_access": rng.randint(0, 1),
            "market_area": rng.choice(areas),
            "high_value_added": rng.randint(0, 1),
            "supplier": rng.randint(0, 1),
            "subcontracting_italy": round(rng.uniform(0, 300_000), 2),
            "subcontracting_europe": round(rng.choice([0, rng.uniform(0, 100_000)]), 2),
            "subcontracting_north_africa": round(rng.choice([0, 0, rng.uniform(0, 50_000)]), 2),
            "subcontracting_east_asia": round(rng.choice([0, 0, rng.uniform(0, 80_000)]), 2),
            "subcontracting_other": None if i % 7 == 0 else 0.0,
        })
    return rows


def _render(value: Any, *, decimal: str, date_style: str, ateco_dots: bool, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y") if date_style == "dmy" else value.isoformat()
    if isinstance(value, float):
        text = repr(value)
        return text.replace(".", ",") if decimal == "," else text
    if column == "ateco_2007" and ateco_dots and isinstance(value, str) and len(value) == 6:
        return f"{value[:2]}.{value[2:4]}.{value[4:]}"
    return str(value)


def write_csv(path: Path, rows: list[dict[str, Any]], *, columns: list[str] | None = None,
              italian: bool = True, encoding: str = "utf-8", separator: str | None = None,
              date_style: str = "dmy", ateco_dots: bool = True, headers: dict[str, str] | None = None,
              gz: bool = False, raw_cells: dict[tuple[int, str], str] | None = None) -> Path:
    """Write rows as CSV. `raw_cells` puts literal text in (row index, column) cells."""
    columns = columns or list(rows[0].keys())
    sep = separator or (";" if italian else ",")
    decimal = "," if italian else "."
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow([(headers or {}).get(c, c) for c in columns])
    for i, row in enumerate(rows):
        out = []
        for c in columns:
            if raw_cells and (i, c) in raw_cells:
                out.append(raw_cells[(i, c)])
            else:
                out.append(_render(row.get(c), decimal=decimal, date_style=date_style,
                                   ateco_dots=ateco_dots, column=c))
        w.writerow(out)
    data = buf.getvalue().encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_survey_csv(path: Path, rows: list[dict[str, Any]], **kw: Any) -> Path:
    kw.setdefault("columns", SURVEY_COLUMNS)
    return write_csv(path, rows, **kw)


def write_parquet(path: Path, rows: list[dict[str, Any]], *, columns: list[str] | None = None,
                  overrides: dict[str, pl.DataType] | None = None) -> Path:
    columns = columns or list(rows[0].keys())
    df = pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], infer_schema_length=None)
    if overrides:
        df = df.with_columns(pl.col(c).cast(t) for c, t in overrides.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)
    return path


# --- AIDA ------------------------------------------------------------------------------

def aida_firms(n: int, years: list[int], *, seed: int = 1, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        i = start + k
        row: dict[str, Any] = {
            "tax_code": company_code(i),
            "company_name": f"Maglificio Àlfa {i} S.p.A.",
            "province": rng.choice(["MI", "FI", "TV", "AP", "NA"]),
            "ateco_2007": rng.choice(["141310", "152010"]),
        }
        for y in years:
            row[f"turnover_{y}"] = float(rng.randrange(8_000_000, 90_000_000))
            row[f"employees_{y}"] = float(rng.randrange(20, 400))
        out.append(row)
    return out


def italian_thousands(x: float) -> str:
    return f"{int(x):,}".replace(",", ".")


def write_aida_xlsx(path: Path, rows: list[dict[str, Any]], *, headers: dict[str, str] | None = None,
                    text_cells: dict[tuple[int, str], str] | None = None, numeric_codes: bool = False) -> Path:
    import xlsxwriter

    columns = list(rows[0].keys())
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Risultati")
    for j, c in enumerate(columns):
        ws.write_string(0, j, (headers or {}).get(c, c))
    for i, row in enumerate(rows):
        for j, c in enumerate(columns):
            v = row[c]
            if text_cells and (i, c) in text_cells:
                ws.write_string(i + 1, j, text_cells[(i, c)])
            elif v is None:
                ws.write_blank(i + 1, j, None)
            elif c == "tax_code" and numeric_codes:
                ws.write_number(i + 1, j, int(v))
            elif isinstance(v, (int, float)):
                ws.write_number(i + 1, j, v)
            else:
                ws.write_string(i + 1, j, str(v))
    wb.close()
    return path


def subsidiaries(firms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    countries = ["RO", "TN", "CN", "TR", "US", "RS", "VN", "IN", "MA", "AL"]
    out = []
    for i, f in enumerate(firms):
        out.append({
            "tax_code": f["tax_code"],
            "subsidiary_name": f"Sub {i} SRL",
            "country_iso2": countries[i % len(countries)],
            "ownership_pct": [100.0, 51.0, 35.5, 80.0][i % 4],
            "first_year": 2004 + i % 5,
            "last_year": None if i % 3 else 2011,
        })
    return out


def llma_rows() -> list[dict[str, Any]]:
    codes = ["001272", "015146", "048017", "097042", "058091", "001001"]
    return [{"municipality_code": c, "llma_code": f"0{100 + i // 2}", "llma_name": f"Area {i // 2}"}
            for i, c in enumerate(codes)]


def census_rows() -> list[dict[str, Any]]:
    out = []
    for llma in ["0100", "0101", "0102"]:
        for div in ["13", "14", "15", "47"]:
            for k, size in enumerate(["0-9", "10-49", "50-249", "250+"]):
                out.append({"llma_code": llma, "ateco_division": div, "size_class": size,
                            "local_units": 10 * (4 - k), "employees": 30 * (k + 1)})
    return out
