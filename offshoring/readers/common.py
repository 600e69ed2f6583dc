"""Reading the contract's text, Excel and Parquet files into frames of canonical columns.

Every reader returns a `RawFrame`: the delivery's columns renamed to the
contract's names (through the column map), still as delivered (text for Excel
and CSV, except CSV numbers that the reader could parse all of; native types for
Parquet), plus ``source_row``, the 1-based data row
(header excluded). `coerce` then parses each column by its kind, vectorised in
polars, and reports the cells it cannot parse by row and column (never by value).

Italian conventions (data contract): ``;`` separator, decimal comma, cp1252 or
UTF-8, ``n.d.``/``n.s.`` for missing numbers, ``.`` as thousands separator in
AIDA. Detection: the encoding is UTF-8 when the bytes decode strictly as UTF-8,
else cp1252; the separator is whichever of ``;``, ``,`` and tab occurs most in
the header line; the decimal mark is ``,`` when the separator is ``;`` and ``.``
otherwise. The column map may set any of the three.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import polars as pl

from offshoring.readers.column_map import SourceMap, rename_columns
from offshoring.validation import ContractError, Failure

Kind = Literal["text", "tax_code", "municipality", "ateco", "number", "integer", "flag", "date",
               "upper", "lower"]

MISSING_MARKERS = ("n.d.", "n.s.", "n.d", "n.s", "n.a.", "n.a")


@dataclass
class RawFrame:
    """A delivery with canonical column names, as read (not yet typed)."""

    frame: pl.DataFrame
    path: Path
    file_format: str  # e.g. "csv; encoding=cp1252; separator=';'; decimal=','"
    decimal: str = ","
    headers: dict[str, str] = field(default_factory=dict)  # canonical -> delivery header
    rows_read: int = 0
    empty_rows: int = 0
    numbers_from_excel: bool = False
    sha256: str | None = None  # of the file as stored, when the reader had its bytes
    # Float64 parses of the number columns by the CSV reader itself (same rows as
    # `frame`); `coerce` uses them and re-parses only columns where they fall short
    numbers: pl.DataFrame | None = None


# ---------------------------------------------------------------------------
# Bytes, hashes, encodings, separators
# ---------------------------------------------------------------------------


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_file_bytes(path: Path) -> tuple[bytes, str]:
    """(content, sha256 of the file as stored); gzip is decompressed."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data, digest


def to_utf8(data: bytes, encoding: str | None = None, *, file: Path | str = "") -> tuple[bytes, str]:
    """The content as UTF-8 bytes and the encoding it was in.

    Without `encoding`: strict UTF-8 first, cp1252 when that fails (a cp1252
    file with any accented letter is not valid UTF-8; one without any reads the
    same either way).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        if encoding in (None, "utf-8", "utf8", "utf-8-sig"):
            encoding = "utf-8"
    enc = (encoding or "").lower().replace("_", "-")
    if enc in ("utf-8", "utf8", "utf-8-sig"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(file, [Failure("unreadable_file", None,
                                               detail=f"not valid UTF-8 at byte {exc.start}")]) from None
        return data, "utf-8"
    if not enc:
        try:
            data.decode("utf-8")
            return data, "utf-8"
        except UnicodeDecodeError:
            enc = "cp1252"
    try:
        return data.decode(enc).encode("utf-8"), enc
    except (UnicodeDecodeError, LookupError) as exc:
        raise ContractError(file, [Failure("unreadable_file", None,
                                           detail=f"cannot be decoded as {enc}: {type(exc).__name__}")]) from None


def header_line(text: str) -> str:
    """The first record of a CSV text, honouring quotes (headers may hold line breaks)."""
    in_quotes = False
    for i, ch in enumerate(text[:200_000]):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            return text[:i]
    return text[:200_000]


def detect_separator(header: str) -> str:
    counts = {}
    in_quotes = False
    for ch in header:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in ";,\t|":
            counts[ch] = counts.get(ch, 0) + 1
    if not counts:
        return ";"
    # ties go to ';', the Italian default
    return max(counts, key=lambda c: (counts[c], c == ";"))


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


def _ragged_failure(text: str, separator: str, path: Path) -> ContractError:
    reader = csv.reader(io.StringIO(text), delimiter=separator, quotechar='"')
    width = None
    bad: list[int] = []
    for i, rec in enumerate(reader):
        if i == 0:
            width = len(rec)
            continue
        if rec and len(rec) != width:
            bad.append(i)
    if bad:
        return ContractError(path, [Failure("ragged_row", None, tuple(bad[:20]), len(bad),
                                            detail=f"the header has {width} fields")])
    return ContractError(path, [Failure("unreadable_file", None, detail="malformed CSV")])


def read_delimited(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
                   patterns_ok: bool = False, numeric: Callable[[str], bool] | None = None,
                   strict_numbers: bool = True) -> RawFrame:
    """Read a (possibly gzipped) CSV file.

    `numeric` (canonical name -> is a number column) lets polars' CSV reader
    parse those columns itself, several times faster than parsing text
    afterwards. With `strict_numbers` the reader first tries a strict parse: when
    every number cell parses (the usual case) the numbers arrive typed and
    nothing else is needed. Otherwise, and always without `strict_numbers` (AIDA,
    whose ``1.234`` means 1234), all cells are read as text and the reader's
    lenient parse is kept in `RawFrame.numbers` as a first guess for `coerce`.
    """
    raw, digest = read_file_bytes(path)
    data, encoding = to_utf8(raw, source.encoding, file=path)
    head = data[:400_000].decode("utf-8", errors="ignore")
    separator = source.separator or detect_separator(header_line(head))
    decimal = source.decimal or ("," if separator == ";" else ".")
    kind = "csv.gz" if path.name.lower().endswith(".gz") else "csv"
    fmt = f"{kind}; encoding={encoding}; separator={separator!r}; decimal={decimal!r}"
    opts = dict(separator=separator, quote_char='"', has_header=True, raise_if_empty=False,
                truncate_ragged_lines=False, empty_string_is_null=True, infer_schema=False)
    try:
        header = pl.read_csv(data, n_rows=0, **opts).columns
    except pl.exceptions.PolarsError:
        raise _ragged_failure(data.decode("utf-8"), separator, path) from None
    rename, _ = rename_columns(header, source, required=required, optional=list(optional), file=path,
                               patterns_ok=patterns_ok)
    usable = numeric is not None and not (decimal == "," and separator == ",") and len(set(header)) == len(header)
    number_headers = [h for h, c in rename.items() if usable and numeric(c)]

    if number_headers and strict_numbers:
        try:
            df = pl.read_csv(data, columns=list(rename), schema_overrides={h: pl.Float64 for h in number_headers},
                             decimal_comma=decimal == ",", **opts)
        except pl.exceptions.PolarsError:
            df = None  # some cell is not a number (or the file is ragged): the text path says which
        if df is not None:
            out = _finish(df, path, source, fmt, decimal, required=required, optional=optional,
                          patterns_ok=patterns_ok)
            out.sha256 = digest
            return out

    try:
        df = pl.read_csv(data, **opts)
    except pl.exceptions.PolarsError:
        # the polars message may quote cells: do not pass it on
        raise _ragged_failure(data.decode("utf-8"), separator, path) from None
    out = _finish(df, path, source, fmt, decimal, required=required, optional=optional,
                  patterns_ok=patterns_ok)
    out.sha256 = digest
    if number_headers:
        wanted = {h: rename[h] for h in number_headers}
        try:
            nums = pl.read_csv(data, columns=list(wanted), schema_overrides={h: pl.Float64 for h in wanted},
                               decimal_comma=decimal == ",", ignore_errors=True,
                               **{k: v for k, v in opts.items() if k != "truncate_ragged_lines"}).rename(wanted)
        except pl.exceptions.PolarsError:
            nums = None
        if nums is not None and nums.height == out.rows_read:
            if out.empty_rows:
                nums = nums[out.frame["source_row"] - 1]
            out.numbers = nums
    return out


def read_parquet(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
                 patterns_ok: bool = False) -> RawFrame:
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet is a contract problem
        raise ContractError(path, [Failure("unreadable_file", None, detail=f"not a Parquet file ({type(exc).__name__})")]) from None
    return _finish(df, path, source, "parquet", source.decimal or ".", required=required,
                   optional=optional, patterns_ok=patterns_ok)


def read_xlsx(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
              patterns_ok: bool = False) -> RawFrame:
    """An Excel workbook through polars' calamine engine (fastexcel), all cells as text.

    Numeric cells come as their shortest decimal text (``1234567``, ``12.5``); text
    cells as written (``n.d.``, ``1.234.567``).
    """
    sheet = source.sheet
    kwargs: dict = {"engine": "calamine", "read_options": {"dtypes": "string", "header_row": 0}}
    if isinstance(sheet, str):
        kwargs["sheet_name"] = sheet
    else:
        kwargs["sheet_id"] = (int(sheet) + 1) if sheet is not None else 1
    try:
        df = pl.read_excel(path, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise ContractError(path, [Failure("unreadable_file", None,
                                           detail=f"not a readable xlsx workbook ({type(exc).__name__})")]) from None
    raw = _finish(df, path, source, f"xlsx; sheet={sheet if sheet is not None else 0}", ".",
                  required=required, optional=optional, patterns_ok=patterns_ok)
    raw.numbers_from_excel = True
    return raw


def _finish(df: pl.DataFrame, path: Path, source: SourceMap, fmt: str, decimal: str, *,
            required: list[str], optional: list[str], patterns_ok: bool) -> RawFrame:
    rename, headers = rename_columns(df.columns, source, required=required, optional=list(optional),
                                     file=path, patterns_ok=patterns_ok)
    df = df.select([pl.col(src).alias(dst) for src, dst in rename.items()])
    df = df.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    rows_read = df.height
    data_cols = [c for c in df.columns if c != "source_row"]
    empty = 0
    if data_cols:
        # empty cells are already null (CSV) or null (Excel, Parquet); a row of blanks only is skipped
        blank = pl.all_horizontal(pl.col(data_cols).is_null())
        empty = int(df.select(blank.sum()).item())
        if empty:
            df = df.filter(~blank)
    return RawFrame(df, path, fmt, decimal, headers, rows_read, empty)


# ---------------------------------------------------------------------------
# Parsing by kind
# ---------------------------------------------------------------------------

_IT_GROUPED = r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$"
_IT_MULTI = r"^[+-]?\d{1,3}(\.\d{3}){2,}$"
_IT_SINGLE = r"^[+-]?\d{1,3}\.\d{3}$"
_EN_GROUPED = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"
_IT_GROUPED_COMMA = r"^[+-]?\d{1,3}(\.\d{3})+,\d*$"
_NUMERIC_KINDS = ("number", "integer", "flag")


def _as_text(col: str, dtype: pl.DataType) -> pl.Expr:
    """A column as text; integral floats without their ``.0`` (Excel and Parquet numbers)."""
    e = pl.col(col)
    if dtype == pl.String:
        return e
    if dtype.is_float():
        return pl.when(e == e.floor()).then(e.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(e.cast(pl.String))
    return e.cast(pl.String, strict=False)


# The parsing below is written in stages: each stage refers only to columns that
# an earlier stage materialised. Eager polars does not share a sub-expression
# used twice, so `when(f(x)).then(g(x)).otherwise(x)` over a long chain `x`
# evaluates the chain three times; over a materialised column it costs nothing.


def number_from_text(s: pl.Expr, *, decimal: str, dot_thousands: bool) -> pl.Expr:
    """Float64 from clean number text (`s` a materialised column); null when unparseable.

    `decimal` is the file's decimal mark. Dots grouping digits by three are
    thousands separators when unambiguous (``1.234.567``, ``1.234,5``); a single
    group (``1.234``) counts as thousands only with `dot_thousands` (AIDA, whose
    exports write thousands that way), else as a decimal point.
    """
    drop_dots = s.str.contains(_IT_MULTI) | s.str.contains(_IT_GROUPED_COMMA)
    if dot_thousands:
        drop_dots = drop_dots | s.str.contains(_IT_SINGLE)
    if decimal == ",":
        t = pl.when(drop_dots).then(s.str.replace_all(".", "", literal=True)).otherwise(s)
        t = t.str.replace(",", ".", literal=True)
    else:
        t = (
            pl.when(s.str.contains(_EN_GROUPED)).then(s.str.replace_all(",", "", literal=True))
            .when(drop_dots).then(s.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
            .otherwise(s)
        )
    return t.cast(pl.Float64, strict=False).fill_nan(None)


def date_from_text(s: pl.Expr) -> pl.Expr:
    """Date from clean text (`s` a materialised column): dd/mm/yyyy, ISO (time ignored), dd-mm-yyyy, dd.mm.yyyy."""
    iso = s.str.extract(r"^(\d{4}-\d{1,2}-\d{1,2})(?:[ T].*)?$", 1)
    return pl.coalesce(
        iso.str.to_date("%Y-%m-%d", strict=False),
        s.str.to_date("%d/%m/%Y", strict=False),
        s.str.to_date("%d-%m-%Y", strict=False),
        s.str.to_date("%d.%m.%Y", strict=False),
    )


def pad_code(s: pl.Expr, *, width: int, pad_from: int) -> pl.Expr:
    """Digit strings of `pad_from`..`width`-1 digits zero-padded to `width` (`s` materialised).

    Numbers (Parquet integer columns, Excel numeric cells) lose leading zeros;
    the padding gives them back. Other shapes stay as they are, for the schema
    to reject.
    """
    n = s.str.len_chars()
    return pl.when(s.str.contains(r"^\d+$") & (n >= pad_from) & (n < width)).then(s.str.zfill(width)).otherwise(s)


def coerce(raw: RawFrame, kinds: dict[str, Kind], *, dot_thousands: bool = False,
           pad_tax_codes: bool | None = None, value_maps: dict[str, dict[str, str]] | None = None,
           scale: dict[str, float] | None = None) -> tuple[pl.DataFrame, list[Failure], set[tuple[int, str]]]:
    """Parse every column of `raw` by its kind, vectorised.

    Returns the typed frame (same rows, plus ``source_row``), the failures of
    cells that are filled but unparseable (by row and column), and the (row
    index, column) pairs of those cells, so that the schema does not report them
    a second time as empty.

    Numbers take a fast path (decimal mark replaced, cast); only a column where
    that leaves a filled cell unparsed, or where AIDA's dots may be thousands,
    is parsed again by `number_from_text`.
    """
    df = raw.frame
    schema = df.schema
    value_maps = value_maps or {}
    if pad_tax_codes is None:
        pad_tax_codes = raw.numbers_from_excel or schema.get("tax_code", pl.String) != pl.String
    cols = [c for c in df.columns if c != "source_row"]
    kind = {c: kinds.get(c, "text") for c in cols}
    native = {c for c in cols if kind[c] in _NUMERIC_KINDS and schema[c] != pl.String}
    native_dates = {c for c in cols if kind[c] == "date" and (schema[c] == pl.Date or isinstance(schema[c], pl.Datetime))}
    texts = [c for c in cols if c not in native and c not in native_dates]
    num_text = [c for c in texts if kind[c] in _NUMERIC_KINDS]

    # stage 1: stripped text (numbers stay raw: they are parsed first, cleaned only if needed)
    hint = raw.numbers
    stage = df.select(
        pl.col("source_row"),
        *[_as_text(c, schema[c]).str.strip_chars().alias(f"__t_{c}") for c in texts if c not in num_text],
        *[(pl.col(c).str.strip_chars().str.to_lowercase()
           .replace({str(a).lower(): str(b) for a, b in value_maps[c].items()})
           if c in value_maps else pl.col(c)).alias(f"__r_{c}") for c in num_text],
        *[pl.col(c).cast(pl.Float64, strict=False).alias(f"__v_{c}") for c in native],
        *[(pl.col(c).dt.date() if isinstance(schema[c], pl.Datetime) else pl.col(c)).alias(f"__d_{c}")
          for c in native_dates],
    )
    # stage 2: empty -> null; native numbers: filled = neither null nor NaN (pandas's missing)
    decimal = raw.decimal
    stage2 = [pl.when(pl.col(f"__t_{c}") == "").then(None).otherwise(pl.col(f"__t_{c}")).alias(f"__t_{c}")
              for c in texts if c not in num_text]
    stage2 += [pl.col(f"__v_{c}").is_not_nan().fill_null(False).alias(f"__f_{c}") for c in native]
    # numbers as text: the CSV reader's parse, or the fast path (decimal mark replaced, cast)
    for c in num_text:
        if hint is not None and c in hint.columns and c not in value_maps:
            stage2.append(hint[c].alias(f"__v_{c}"))
        else:
            r = pl.col(f"__r_{c}").str.strip_chars()
            r = r.str.replace(",", ".", literal=True) if decimal == "," else r
            stage2.append(r.cast(pl.Float64, strict=False).alias(f"__v_{c}"))
    stage = stage.with_columns(stage2)
    slow: list[str] = []
    if num_text:
        probe = []
        for c in num_text:
            r, v = pl.col(f"__r_{c}"), pl.col(f"__v_{c}")
            need = r.is_not_null() & v.is_null()
            if dot_thousands:
                need = need | r.str.contains(".", literal=True)
            probe.append(need.any().alias(c))
        needs = stage.select(probe).row(0, named=True)
        slow = [c for c, v in needs.items() if v]
    if slow:
        # the full parse: clean text (no blanks, n.d./n.s. missing), then `number_from_text`
        markers = list(MISSING_MARKERS)
        stage = stage.with_columns(pl.col(f"__r_{c}").str.strip_chars().alias(f"__t_{c}") for c in slow)
        stage = stage.with_columns(
            pl.when((pl.col(f"__t_{c}") == "") | pl.col(f"__t_{c}").str.to_lowercase().is_in(markers))
            .then(None).otherwise(pl.col(f"__t_{c}").str.replace_all(r"[\s\u00a0\u202f]", "")).alias(f"__t_{c}")
            for c in slow
        )
        stage = stage.with_columns(
            number_from_text(pl.col(f"__t_{c}"), decimal=decimal, dot_thousands=dot_thousands).alias(f"__v_{c}")
            for c in slow
        )
    num_cols = [c for c in cols if kind[c] in _NUMERIC_KINDS]
    if num_cols:
        stage = stage.with_columns(pl.col(f"__v_{c}").fill_nan(None) for c in num_cols)
        stage = stage.with_columns(
            pl.when(pl.col(f"__v_{c}").is_infinite()).then(None).otherwise(pl.col(f"__v_{c}")).alias(f"__v_{c}")
            for c in num_cols
        )
    # stage 4: dates from text
    date_text = [c for c in texts if kind[c] == "date"]
    if date_text:
        stage = stage.with_columns(date_from_text(pl.col(f"__t_{c}")).alias(f"__d_{c}") for c in date_text)

    # stage 5: typed columns and flags of unparseable cells
    exprs: list[pl.Expr] = []
    bad: list[pl.Expr] = []
    rule_of: dict[str, str] = {}
    for c in cols:
        k = kind[c]
        if c in native:
            filled = pl.col(f"__f_{c}")
        elif c in native_dates:
            filled = pl.col(f"__d_{c}").is_not_null()
        elif c in num_text and c not in slow:
            filled = pl.col(f"__r_{c}").is_not_null()
        else:
            filled = pl.col(f"__t_{c}").is_not_null()
        if k == "number":
            v = pl.col(f"__v_{c}")
            stem = re.sub(r"_\d{4}$", "", c)
            exprs.append((v * float(scale[stem]) if scale and stem in scale else v).alias(c))
            bad.append((filled & v.is_null()).alias(f"__bad_{c}"))
            rule_of[c] = "unparseable_number"
        elif k == "flag":
            v = pl.col(f"__v_{c}")
            # any other number becomes 2, for the schema's 0/1 check to reject
            exprs.append(pl.when(v == 0).then(0).when(v == 1).then(1).when(v.is_not_null()).then(2)
                         .otherwise(None).cast(pl.Int8).alias(c))
            bad.append((filled & v.is_null()).alias(f"__bad_{c}"))
            rule_of[c] = "unparseable_number"
        elif k == "integer":
            v = pl.col(f"__v_{c}")
            whole = v.is_not_null() & (v == v.round(0)) & (v.abs() < 2**31)
            out_dtype = pl.Int32 if c.endswith("year") else pl.Int64
            exprs.append(pl.when(whole).then(v).otherwise(None).cast(out_dtype).alias(c))
            bad.append((filled & ~whole).alias(f"__bad_{c}"))
            rule_of[c] = "unparseable_integer"
        elif k == "date":
            d = pl.col(f"__d_{c}")
            exprs.append(d.alias(c))
            if c not in native_dates:
                bad.append((filled & d.is_null()).alias(f"__bad_{c}"))
                rule_of[c] = "unparseable_date"
        else:
            t = pl.col(f"__t_{c}")
            if k == "tax_code":
                e = pad_code(t, width=11, pad_from=8 if pad_tax_codes else 99).str.to_uppercase()
            elif k == "municipality":
                e = pad_code(t, width=6, pad_from=4)
            elif k == "ateco":
                e = t.str.replace_all(r"[.\s]", "")
            elif k == "upper":
                e = t.str.to_uppercase()
            elif k == "lower":
                e = t.str.to_lowercase()
                if c in value_maps:
                    e = e.replace({a.lower(): b for a, b in value_maps[c].items()})
            else:
                e = t
            exprs.append(e.alias(c))
    out = stage.select(*exprs, pl.col("source_row"), *bad)
    bad_cols = [f"__bad_{c}" for c in rule_of]
    failures: list[Failure] = []
    skip: set[tuple[int, str]] = set()
    if bad_cols:
        hits = out.select(pl.col("source_row"), *bad_cols).with_row_index("_i").filter(pl.any_horizontal(bad_cols))
        for c in rule_of:
            hit = hits.filter(pl.col(f"__bad_{c}"))
            if hit.height:
                rows = tuple(hit["source_row"].to_list())
                failures.append(Failure(rule_of[c], c, rows, len(rows), header=raw.headers.get(c)))
                skip.update((int(i), c) for i in hit["_i"].to_list())
        out = out.drop(bad_cols)
    return out, failures, skip


def read_any(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
             patterns_ok: bool = False, allowed: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".xlsx"),
             numeric: Callable[[str], bool] | None = None, strict_numbers: bool = True) -> RawFrame:
    """Dispatch on the file's extension."""
    name = path.name.lower()
    ext = next((e for e in sorted(allowed, key=len, reverse=True) if name.endswith(e)), None)
    if ext is None:
        raise ContractError(path, [Failure("unreadable_file", None,
                                           detail=f"unsupported file type; expected one of {', '.join(allowed)}")])
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if ext in (".csv", ".csv.gz", ".txt"):
        return read_delimited(path, source, required=required, optional=optional, patterns_ok=patterns_ok,
                              numeric=numeric, strict_numbers=strict_numbers)
    if ext == ".parquet":
        return read_parquet(path, source, required=required, optional=optional, patterns_ok=patterns_ok)
    return read_xlsx(path, source, required=required, optional=optional, patterns_ok=patterns_ok)


def year_columns(columns: list[str], stems: tuple[str, ...]) -> list[int]:
    """Years of wide columns named ``<stem>_<YYYY>``."""
    pat = re.compile(rf"^({'|'.join(map(re.escape, stems))})_(\d{{4}})$")
    return sorted({int(m.group(2)) for c in columns if (m := pat.match(c))})
