"""Reading the contract's text, Excel and Parquet files into frames of canonical columns.

Every reader returns a `RawFrame`: the delivery's columns renamed to the
contract's names (through the column map), still as delivered (text for Excel
and CSV, except CSV number columns that the reader could parse in full; native
types for Parquet), plus ``source_row``, the 1-based data row
(header excluded). `coerce` then parses each column by its kind, vectorised in
polars, and reports the cells it cannot parse by row and column (never by value).

Italian conventions (data contract): ``;`` separator, decimal comma, cp1252 or
UTF-8, ``n.d.``/``n.s.`` for missing numbers, ``.`` as thousands separator in
AIDA. Detection: the encoding is UTF-8 when the bytes decode strictly as UTF-8,
else cp1252; the separator is whichever of ``;``, ``,`` and tab occurs most in
the header line; the decimal mark is ``,`` when the separator is ``;`` and ``.``
otherwise. The column map may set any of the three, and a thousands separator.

The readers are the first half of the delivery gate: a file that does not fit
the contract is refused with a `ContractError` naming the file, the rule, the
column and the data rows, never a cell's value (tax codes are personal data),
and in bounded memory whatever the file holds (`MAX_ROWS_KEPT` rows per rule,
exact counts). Refused here: a gzip that cannot be decompressed, a row with more
or fewer fields than the header (polars would fill a short row with empty cells,
so a file cut inside a row would load), a header naming one column twice, and,
where the reader asks for it (the survey, the subsidiaries, the census), a number that
reads two ways (``352.300`` in a decimal-comma file: thousands or a decimal point?), and
any mark in a whole-number column (``2.000`` or ``2,000`` employees).
"""

from __future__ import annotations

import codecs
import copy
import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import polars as pl

from offshoring.readers.column_map import SourceMap, rename_columns
# in the light module (no polars, no pandera); re-exported here
from offshoring.readers.layout import inside_folder, sha256_file  # noqa: F401
from offshoring.validation import ContractError, Failure, RuleSchema

Kind = Literal["text", "tax_code", "municipality", "ateco", "number", "integer", "flag", "date",
               "upper", "lower"]

MISSING_MARKERS = ("n.d.", "n.s.", "n.d", "n.s", "n.a.", "n.a")

#: data rows kept per failure: messages show five, the load log the first few; the count
#: is always exact. Keeping every row of a junk file of millions of rows would cost gigabytes.
MAX_ROWS_KEPT = 20

_STEP = 1 << 24  # bytes per step of the streaming passes (encoding checks)


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
    # the column map's thousands separator, if it declares one
    thousands: str | None = None
    # number cells holding the mark that is not the decimal mark are refused as
    # ambiguous unless it is the declared thousands separator (survey, subsidiaries, census)
    check_marks: bool = False
    # xlsx: the number columns' cells that the workbook holds as numbers, as Float64 (null
    # where a cell is text or empty; same rows as `frame`). `coerce` keeps these values:
    # a typed 123.456 is that number, while the text '123.456' follows the file's conventions
    excel_numbers: pl.DataFrame | None = None


# ---------------------------------------------------------------------------
# Where raw files may be
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Bytes, hashes, encodings, separators
# ---------------------------------------------------------------------------


def read_file_bytes(path: Path) -> tuple[bytes, str]:
    """(content, sha256 of the file as stored); gzip is decompressed.

    A gzip cut short in a transfer or corrupt is a `ContractError`, not the
    `EOFError` of the gzip module, and so is a ``.gz`` file that is no gzip.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    is_gzip = data[:2] == b"\x1f\x8b"
    if is_gzip or path.name.lower().endswith(".gz"):
        try:
            if not is_gzip:
                raise OSError("no gzip header")
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error):
            raise ContractError(path, [Failure("unreadable_file", None,
                                               detail="not a readable gzip file: corrupt or truncated")]) from None
    return data, digest


def _utf8_error_at(data: bytes) -> int | None:
    """Offset of the first byte that is not valid UTF-8, or None.

    Decoded step by step: a whole file decoded at once would be a second copy
    of it, up to four times its size.
    """
    if data.isascii():
        return None
    view = memoryview(data)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    for start in range(0, len(data), _STEP):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(view[start:start + _STEP], final=start + _STEP >= len(data))
        except UnicodeDecodeError as exc:
            return start - pending + exc.start
    return None


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
        bad = _utf8_error_at(data)
        if bad is not None:
            raise ContractError(file, [Failure("unreadable_file", None, detail=f"not valid UTF-8 at byte {bad}")])
        return data, "utf-8"
    if not enc:
        if _utf8_error_at(data) is None:
            return data, "utf-8"
        enc = "cp1252"
    try:
        decoder = codecs.getincrementaldecoder(enc)("strict")
        view = memoryview(data)
        parts = [decoder.decode(view[s:s + _STEP], final=s + _STEP >= len(data)).encode("utf-8")
                 for s in range(0, len(data), _STEP)]
        return b"".join(parts), enc
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


def header_fields(header: str, separator: str) -> list[str]:
    """The cells of a header line as written (quotes honoured), duplicates included."""
    try:
        return next(csv.reader([header], delimiter=separator, quotechar='"'), [])
    except csv.Error:
        return []


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


def default_decimal(separator: str, thousands: str | None = None) -> str:
    """The decimal mark when the column map sets none: the other mark than a declared
    thousands separator, else ``,`` with ``;`` separators and ``.`` otherwise."""
    if thousands in (",", "."):
        return "." if thousands == "," else ","
    return "," if separator == ";" else "."


# ---------------------------------------------------------------------------
# Rows of the wrong width
# ---------------------------------------------------------------------------


def _csv_problem(exc: csv.Error) -> str:
    """The csv module's complaint in words of our own (its messages hold no cell, but be sure)."""
    text = str(exc)
    if "field limit" in text:
        return "a field longer than 128 KiB (a quote that is never closed?)"
    if "NUL" in text:
        return "a NUL byte"
    return "malformed quoting"


def _widths_unquoted(data: bytes, separator: str, width: int) -> tuple[list[int], int, int | None]:
    """(first bad rows, how many, the first one's width) of a text without any quote character.

    Without quotes a record is a line and its fields are its separators plus
    one, so the count is vectorised, a step of lines at a time (a few times
    faster than the csv module, which a valid file with empty last cells would
    otherwise pay on every load).
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    sep, nl, cr = ord(separator), ord("\n"), ord("\r")
    bad: list[int] = []
    n_bad, first_width = 0, None
    start = data.find(b"\n") + 1  # after the header
    row = 1
    while 0 < start < len(data):
        stop = min(len(data), start + _STEP)
        if stop < len(data):
            cut = data.rfind(b"\n", start, stop)
            stop = cut + 1 if cut >= 0 else (data.find(b"\n", stop) + 1 or len(data))
        chunk = arr[start:stop]
        ends = np.flatnonzero(chunk == nl)
        if ends.size == 0 or ends[-1] != chunk.size - 1:
            ends = np.append(ends, chunk.size)  # a last line without its line break
        starts = np.concatenate(([0], ends[:-1] + 1))
        seps = np.flatnonzero(chunk == sep)
        fields = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
        length = ends - starts
        blank = (length == 0) | ((length == 1) & (chunk[np.minimum(starts, chunk.size - 1)] == cr))
        wrong = np.flatnonzero(~blank & (fields != width))
        if wrong.size:
            if first_width is None:
                first_width = int(fields[wrong[0]])
            bad.extend((row + wrong[: MAX_ROWS_KEPT - len(bad)]).tolist())
            n_bad += int(wrong.size)
        row += int(ends.size)
        start = stop
    return bad, n_bad, first_width


def width_failures(data: bytes, separator: str, width: int | None = None) -> list[Failure]:
    """Data rows whose number of fields differs from the header's, streaming over `data`.

    Rows are numbered as the reader numbers them (records after the header, a
    quoted line break inside a record included; blank lines count and are not
    ragged). Keeps the first `MAX_ROWS_KEPT` rows and the count: a 200 MB junk
    file costs a few MB here. With `width` None, the header's own count.
    """
    out: list[Failure] = []
    if width is not None and b'"' not in data and len(separator) == 1 and ord(separator) < 128:
        bad, n_bad, first_width = _widths_unquoted(data, separator, width)
    else:
        stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(stream, delimiter=separator, quotechar='"')
        bad: list[int] = []
        n_bad, first_width, row = 0, None, 0
        try:
            header = next(reader, None)
            if width is None:
                width = len(header or [])
            for row, rec in enumerate(reader, 1):
                if rec and len(rec) != width:
                    n_bad += 1
                    if len(bad) < MAX_ROWS_KEPT:
                        bad.append(row)
                    if first_width is None:
                        first_width = len(rec)
        except csv.Error as exc:
            out.append(Failure("unreadable_file", None,
                               detail=f"malformed CSV from data row {row + 1} on: {_csv_problem(exc)}"))
    if n_bad:
        what = "field" if first_width == 1 else "fields"
        out.insert(0, Failure("ragged_row", None, tuple(bad), n_bad,
                              detail=f"the header has {width} fields; data row {bad[0]} has {first_width} {what}"))
    return out


def _ragged_error(data: bytes, separator: str, path: Path, width: int | None = None) -> ContractError:
    """The error for a CSV text polars could not read: ragged rows if any, else malformed."""
    failures = width_failures(data, separator, width) or [
        Failure("unreadable_file", None, detail="malformed CSV")]
    return ContractError(path, failures, n_rows_rejected=sum(f.n_rows for f in failures if f.rule == "ragged_row"))


def _check_widths(df: pl.DataFrame, last: str | None, data: bytes, separator: str, width: int,
                  path: Path) -> None:
    """Refuse short rows, which polars fills with empty cells instead of refusing.

    A short row leaves the last column empty, so only a file with an empty cell
    in its last column needs the exact scan (rows that are too long polars
    refuses itself, and `_ragged_error` then names them).
    """
    if last is None or df.height == 0 or df.get_column(last).null_count() == 0:
        return
    failures = width_failures(data, separator, width)
    if failures:
        raise ContractError(path, failures, n_rows_rejected=sum(f.n_rows for f in failures))


def _precheck_widths(data: bytes, last: str | None, separator: str, width: int, path: Path, opts: dict) -> None:
    """`_check_widths` before a file is read whole: on its last column alone.

    A junk file would otherwise be read as text first, some 16 bytes a cell
    (gigabytes for 200 MB of junk), only to be refused for its widths.
    """
    if last is None:
        return
    try:
        df = pl.read_csv(data, columns=[last], **opts)
    except pl.exceptions.PolarsError:
        raise _ragged_error(data, separator, path, width) from None
    _check_widths(df, last, data, separator, width, path)


def _dotted_columns(df: pl.DataFrame, data: bytes, header: str, floats: list[str], opts: dict) -> list[str]:
    """The number columns of a decimal-comma file, parsed by polars, that hold a ``.`` in some cell.

    Polars' decimal-comma parse takes ``352.300`` for 352.3 (and ``1.5`` for
    1.5), so such columns must be read as text, for `coerce` to refuse them as
    ambiguous (or to read declared thousands). Cheap test first: when every dot
    of the file is in the header or in a text column already read, no number
    cell has one; otherwise the number columns are read again as text to tell.
    """
    total = data.count(b".")
    if not total or not floats:
        return []
    known = header.count(".") + sum(
        int(df.get_column(c).str.count_matches(".", literal=True).sum() or 0)
        for c, t in df.schema.items() if t == pl.String
    )
    if total == known:
        return []
    texts = pl.read_csv(data, columns=floats, **opts)
    dotted = texts.select(pl.col(c).str.contains(".", literal=True).any() for c in texts.columns).row(0, named=True)
    return [c for c, hit in dotted.items() if hit]


def _unparsed_column(exc: Exception, columns: list[str], floats: list[str]) -> str | None:
    """The column polars could not parse as a number, from its message (which is never passed on:
    it quotes the cell). None when the message is not of that kind."""
    first = str(exc).split("\n", 1)[0]
    if not first.startswith("could not parse"):
        return None
    numbers = re.findall(r"\(column number (\d+)\)", first)
    if not numbers or not 1 <= int(numbers[-1]) <= len(columns):
        return None
    name = columns[int(numbers[-1]) - 1]
    return name if name in floats else None


def _read_typed(data: bytes, *, columns: list[str], rename: dict[str, str], number_headers: list[str],
                decimal: str, check_marks: bool, header: str, separator: str, path: Path,
                opts: dict) -> tuple[pl.DataFrame | None, bool]:
    """The wanted columns (and the last one), number columns parsed by polars' CSV reader.

    A number column polars cannot parse in full (a ``n.d.``, a typo, junk) is
    read as text and the others are parsed again, so that `coerce` gets text
    only where it needs it: a text cell costs twice a parsed one, and a 200 MB
    junk file read all as text takes gigabytes. Returns (the frame, or None:
    read the file as text; whether the row widths were checked on the way,
    refused with a `ContractError` if wrong).
    """
    last = columns[-1] if columns else None
    width = len(columns)
    wanted = list(rename) + ([last] if last not in rename else [])
    as_text: set[str] = set()
    widths_checked = False
    while True:
        floats = [h for h in number_headers if h not in as_text]
        try:
            df = pl.read_csv(data, columns=wanted, schema_overrides={h: pl.Float64 for h in floats},
                             decimal_comma=decimal == ",", **opts)
        except pl.exceptions.PolarsError as exc:
            if not widths_checked:
                _precheck_widths(data, last, separator, width, path, opts)
                widths_checked = True
            name = _unparsed_column(exc, columns, floats)
            if name is None:
                return None, widths_checked
            as_text.add(name)
            continue
        if not widths_checked:
            _check_widths(df, last, data, separator, width, path)
            widths_checked = True
        if check_marks and decimal == ",":
            dotted = _dotted_columns(df, data, header, floats, opts)
            if dotted:
                as_text.update(dotted)
                continue
        return df, widths_checked


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


def read_delimited(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
                   patterns_ok: bool = False, numeric: Callable[[str], bool] | None = None,
                   strict_numbers: bool = True, check_marks: bool = False) -> RawFrame:
    """Read a (possibly gzipped) CSV file.

    `numeric` (canonical name -> is a number column) lets polars' CSV reader
    parse those columns itself, several times faster than parsing text
    afterwards. With `strict_numbers` the reader parses them strictly: when
    every number cell parses (the usual case) the numbers arrive typed and
    nothing else is needed; a column with a cell that does not parse arrives as
    text (`_read_typed`). Without `strict_numbers` (AIDA, whose ``1.234`` means
    1234) all cells are read as text and the reader's lenient parse is kept in
    `RawFrame.numbers` as a first guess for `coerce`. With `check_marks`, a
    number column holding the mark that is not the decimal mark arrives as text
    too, for `coerce` to refuse those cells as ambiguous.

    Every data row must have the header's number of fields, and no header may
    name a wanted column twice (polars would keep the first silently).
    """
    raw, digest = read_file_bytes(path)
    data, encoding = to_utf8(raw, source.encoding, file=path)
    del raw
    first = header_line(data[:400_000].decode("utf-8", errors="ignore"))
    separator = source.separator or detect_separator(first)
    decimal = source.decimal or default_decimal(separator, source.thousands)
    kind = "csv.gz" if path.name.lower().endswith(".gz") else "csv"
    fmt = f"{kind}; encoding={encoding}; separator={separator!r}; decimal={decimal!r}"
    if source.thousands:
        fmt += f"; thousands={source.thousands!r}"
    opts = dict(separator=separator, quote_char='"', has_header=True, raise_if_empty=False,
                truncate_ragged_lines=False, empty_string_is_null=True, infer_schema=False)
    try:
        columns = pl.read_csv(data, n_rows=0, **opts).columns
    except pl.exceptions.PolarsError:
        raise _ragged_error(data, separator, path) from None
    # the header as written: polars renames a repeated name ('turnover_duplicated_0')
    names = header_fields(first, separator)
    if len(names) != len(columns):
        names = list(columns)
    by_name, headers = rename_columns(names, source, required=required, optional=list(optional), file=path,
                                      patterns_ok=patterns_ok)
    rename = {columns[i]: by_name[h] for i, h in enumerate(names) if h in by_name}  # polars name -> canonical
    width, last = len(columns), (columns[-1] if columns else None)
    usable = numeric is not None and not (decimal == "," and separator == ",")
    number_headers = [h for h, c in rename.items() if usable and numeric(c)]
    finish = dict(path=path, source=source, fmt=fmt, decimal=decimal, rename=rename, headers=headers,
                  thousands=source.thousands, check_marks=check_marks)

    widths_checked = False
    if number_headers and strict_numbers:
        df, widths_checked = _read_typed(data, columns=columns, rename=rename, number_headers=number_headers, decimal=decimal,
                         check_marks=check_marks, header=first, separator=separator, path=path, opts=opts)
        if df is not None:
            del data
            out = _finish(df, **finish)
            out.sha256 = digest
            return out

    if not widths_checked:
        _precheck_widths(data, last, separator, width, path, opts)
    try:
        df = pl.read_csv(data, **opts)
    except pl.exceptions.PolarsError:
        # the polars message may quote cells: do not pass it on
        raise _ragged_error(data, separator, path, width) from None
    nums = None
    if number_headers:
        wanted = {h: rename[h] for h in number_headers}
        try:
            nums = pl.read_csv(data, columns=list(wanted), schema_overrides={h: pl.Float64 for h in wanted},
                               decimal_comma=decimal == ",", ignore_errors=True,
                               **{k: v for k, v in opts.items() if k != "truncate_ragged_lines"}).rename(wanted)
        except pl.exceptions.PolarsError:
            nums = None
    del data  # the text is in `df` now; a junk file is held twice at most
    out = _finish(df, **finish)
    del df
    out.sha256 = digest
    if nums is not None and nums.height == out.rows_read:
        if out.empty_rows:
            nums = nums[out.frame["source_row"] - 1]
        out.numbers = nums
    return out


def read_parquet(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
                 patterns_ok: bool = False, check_marks: bool = False) -> RawFrame:
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet is a contract problem
        raise ContractError(path, [Failure("unreadable_file", None, detail=f"not a Parquet file ({type(exc).__name__})")]) from None
    by_name, headers = rename_columns(df.columns, source, required=required, optional=list(optional), file=path,
                                      patterns_ok=patterns_ok)
    # Parquet text cells have no convention to follow: '.' unless the map says otherwise
    decimal = source.decimal or {".": ",", ",": "."}.get(source.thousands or "", ".")
    return _finish(df, path, source, "parquet", decimal, rename=by_name, headers=headers,
                   thousands=source.thousands, check_marks=check_marks)


_RENAMED_TWICE = re.compile(r"^(.*)_\d+$")


def read_xlsx(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
              patterns_ok: bool = False, numeric: Callable[[str], bool] | None = None) -> RawFrame:
    """An Excel workbook through polars' calamine engine (fastexcel), all cells as text.

    Numeric cells come as their shortest decimal text (``1234567``, ``12.5``); text
    cells as written (``n.d.``, ``1.234.567``). Calamine renames a repeated
    header (``turnover``, ``turnover_1``); then the header row is read again as
    written, so that the repetition is refused rather than the copy ignored.

    The text of a numeric cell cannot tell ``123.456`` the number from ``123.456``
    the text (AIDA's 123456), so the number columns (`numeric`, by canonical
    name) are also read as numbers: `RawFrame.excel_numbers` holds the values of
    the cells the workbook stores as numbers, which `coerce` keeps as they are.
    """
    sheet = source.sheet
    # blank rows are kept here and skipped (and counted) by `_finish`, as in a CSV file: the
    # data rows keep the sheet's numbering, and the reads of the number cells align with them
    kwargs: dict = {"engine": "calamine", "read_options": {"dtypes": "string", "header_row": 0},
                    "drop_empty_rows": False}
    if isinstance(sheet, str):
        kwargs["sheet_name"] = sheet
    else:
        kwargs["sheet_id"] = (int(sheet) + 1) if sheet is not None else 1
    try:
        df = pl.read_excel(path, **kwargs)
        names = list(df.columns)
        if any((m := _RENAMED_TWICE.match(c)) and m.group(1) in names for c in names):
            first = pl.read_excel(path, **{**kwargs, "read_options": {"dtypes": "string", "header_row": None,
                                                                       "n_rows": 1}})
            row = [("" if v is None else str(v)) for v in first.row(0)] if first.height else []
            if len(row) == len(names):
                names = row
    except Exception as exc:  # noqa: BLE001
        raise ContractError(path, [Failure("unreadable_file", None,
                                           detail=f"not a readable xlsx workbook ({type(exc).__name__})")]) from None
    by_name, headers = rename_columns(names, source, required=required, optional=list(optional), file=path,
                                      patterns_ok=patterns_ok)
    rename = {df.columns[i]: by_name[h] for i, h in enumerate(names) if h in by_name}
    typed = _excel_numbers(path, kwargs, df, rename, numeric) if numeric is not None else None
    # Text cells follow the export's Italian conventions, as a CSV of the same export does
    # (``12,5`` is 12.5, ``1.234.567`` a number with thousands; the column map's ``decimal``
    # says otherwise); a number cell's text has a decimal point (``12.5``), which reads the
    # same either way, and a number cell whose text groups digits by three keeps its value
    # (`RawFrame.excel_numbers`)
    raw = _finish(df, path, source, f"xlsx; sheet={sheet if sheet is not None else 0}", source.decimal or ",",
                  rename=rename, headers=headers)
    raw.numbers_from_excel = True
    if typed is not None:
        # the rows `_finish` kept (a row of empty cells only is skipped)
        raw.excel_numbers = typed[raw.frame["source_row"] - 1] if raw.empty_rows else typed
    return raw


def _excel_numbers(path: Path, kwargs: dict, df: pl.DataFrame, rename: dict[str, str],
                   numeric: Callable[[str], bool]) -> pl.DataFrame | None:
    """Float64 of the cells of the number columns that the workbook stores as numbers; null elsewhere.

    Calamine reads a column as ``float`` from numeric cells and from text that looks
    like a number alike; as ``boolean`` it reads every numeric cell and only the text
    ``true``/``false``. A cell that both reads (and is not such a text, nor a
    boolean cell, whose text is ``true``/``false`` too) is a number in the workbook.
    Columns by position: `df` is the same sheet read as text, whose names may repeat.
    """
    idx = [i for i, c in enumerate(df.columns) if c in rename and numeric(rename[c])]
    if not idx or df.height == 0:
        return None
    # Only a cell whose text groups digits by three after a dot ('123.456', '-1.234.567') reads
    # differently as a number and by AIDA's text rule: without one, the text read is the answer
    # and the sheet is not read again (two more reads of a large export cost seconds)
    grouped = df.select(pl.any_horizontal(
        pl.col(df.columns[i]).str.strip_chars().str.contains(r"^-?\d{1,3}(\.\d{3})+$").fill_null(False).any()
        for i in idx)).item()
    if not grouped:
        return None
    # by name, with the text read's own options: a headerless empty spacer column is dropped by
    # every read alike, so no column takes its neighbour's values
    names = [df.columns[i] for i in idx]
    opts = {"header_row": 0, "use_columns": names}
    kwargs = {**kwargs, "drop_empty_rows": False}
    try:
        as_float = pl.read_excel(path, **{**kwargs, "read_options": {**opts, "dtypes": {n: "float" for n in names}}})
        as_bool = pl.read_excel(path, **{**kwargs, "read_options": {**opts, "dtypes": {n: "boolean" for n in names}}})
    except Exception as exc:  # noqa: BLE001
        raise ContractError(path, [Failure("unreadable_file", None,
                                           detail=f"not a readable xlsx workbook ({type(exc).__name__})")]) from None
    if as_float.shape != (df.height, len(idx)) or as_bool.shape != (df.height, len(idx)):
        raise ContractError(path, [Failure("unreadable_file", None,
                                           detail="the workbook's number cells could not be told from its text")])
    cols = {}
    for j, i in enumerate(idx):
        text = df.get_column(df.columns[i]).str.strip_chars().str.to_lowercase()
        is_number = as_bool.get_column(names[j]).is_not_null() & ~text.is_in(["true", "false"]).fill_null(False)
        cells = pl.DataFrame({"value": as_float.get_column(names[j]).cast(pl.Float64), "is_number": is_number})
        cols[rename[df.columns[i]]] = cells.select(
            pl.when(pl.col("is_number")).then(pl.col("value")).otherwise(None)).to_series()
    return pl.DataFrame(cols)


def _row_numbers(df: pl.DataFrame) -> pl.Series:
    """``source_row`` (1, 2, ...) in the chunks of `df`'s columns.

    The CSV reader returns columns in chunks; a row index in one chunk next to
    them would make polars re-align (copy) every column at the next select, a
    copy of the whole file as text.
    """
    lengths = df.get_column(df.columns[0]).chunk_lengths() if df.width else [df.height]
    if len(lengths) < 2 or any(df.get_column(c).chunk_lengths() != lengths for c in df.columns):
        return pl.int_range(1, df.height + 1, dtype=pl.Int64, eager=True).alias("source_row")
    starts = [1]
    for n in lengths[:-1]:
        starts.append(starts[-1] + n)
    return pl.concat([pl.int_range(a, a + n, dtype=pl.Int64, eager=True) for a, n in zip(starts, lengths)],
                     rechunk=False).alias("source_row")


def _finish(df: pl.DataFrame, path: Path, source: SourceMap, fmt: str, decimal: str, *,
            rename: dict[str, str], headers: dict[str, str], thousands: str | None = None,
            check_marks: bool = False) -> RawFrame:
    df = df.select([pl.col(src).alias(dst) for src, dst in rename.items()])
    df = df.insert_column(0, _row_numbers(df))
    rows_read = df.height
    data_cols = [c for c in df.columns if c != "source_row"]
    empty = 0
    if data_cols:
        # empty cells are already null (CSV) or null (Excel, Parquet); a row of blanks only is skipped
        blank = pl.all_horizontal(pl.col(data_cols).is_null())
        empty = int(df.select(blank.sum()).item())
        if empty:
            df = df.filter(~blank)
    return RawFrame(df, path, fmt, decimal, headers, rows_read, empty, thousands=thousands,
                    check_marks=check_marks)


# ---------------------------------------------------------------------------
# Parsing by kind
# ---------------------------------------------------------------------------

_IT_GROUPED = r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$"
_IT_MULTI = r"^[+-]?\d{1,3}(\.\d{3}){2,}$"
_IT_SINGLE = r"^[+-]?\d{1,3}\.\d{3}$"
_EN_GROUPED = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"
_IT_GROUPED_COMMA = r"^[+-]?\d{1,3}(\.\d{3})+,\d*$"
_GROUPED = {",": _IT_GROUPED, ".": _EN_GROUPED}  # decimal mark -> thousands grouped by the other mark
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
    """Date from clean text (`s` a materialised column): dd/mm/yyyy, ISO (time ignored), dd-mm-yyyy, dd.mm.yyyy.

    The year has four digits: the parser's ``%Y`` takes ``20/09/11`` for the year 11
    (not 2011), so a day-first date is parsed only when its year is written in full;
    any other form is null, for the reader to refuse as unparseable.
    """
    iso = s.str.extract(r"^(\d{4}-\d{1,2}-\d{1,2})(?:[ T].*)?$", 1)

    def day_first(sep: str) -> pl.Expr:
        full_year = s.str.contains(rf"^\d{{1,2}}{re.escape(sep)}\d{{1,2}}{re.escape(sep)}\d{{4}}$")
        return pl.when(full_year).then(s.str.to_date(f"%d{sep}%m{sep}%Y", strict=False))

    return pl.coalesce(
        iso.str.to_date("%Y-%m-%d", strict=False),
        day_first("/"),
        day_first("-"),
        day_first("."),
    )


def pad_code(s: pl.Expr, *, width: int, pad_from: int) -> pl.Expr:
    """Digit strings of `pad_from`..`width`-1 digits zero-padded to `width` (`s` materialised).

    Numbers (Parquet integer columns, Excel numeric cells) lose leading zeros;
    the padding gives them back. Other shapes stay as they are, for the schema
    to reject.
    """
    n = s.str.len_chars()
    return pl.when(s.str.contains(r"^\d+$") & (n >= pad_from) & (n < width)).then(s.str.zfill(width)).otherwise(s)


class CellSet:
    """(row position, column) pairs of cells already reported, as one sorted array per column.

    What `RuleSchema.validate` takes as `skip` (it iterates the pairs). A set of
    Python tuples would cost some 150 bytes per cell, gigabytes for a junk file
    of millions of unparseable cells; `window` hands the schema one chunk of
    rows at a time (`schema_failures`).
    """

    def __init__(self) -> None:
        self.positions: dict[str, np.ndarray] = {}

    def add(self, column: str, positions: Iterable[int] | np.ndarray) -> None:
        pos = np.asarray(positions, dtype=np.int64)
        old = self.positions.get(column)
        self.positions[column] = pos if old is None else np.union1d(old, pos)

    def __len__(self) -> int:
        return sum(p.size for p in self.positions.values())

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for column, pos in self.positions.items():
            for i in pos.tolist():
                yield i, column

    def __contains__(self, cell: object) -> bool:
        if not (isinstance(cell, tuple) and len(cell) == 2):
            return False
        pos = self.positions.get(cell[1])
        if pos is None:
            return False
        k = int(np.searchsorted(pos, cell[0]))
        return k < pos.size and pos[k] == cell[0]

    def window(self, start: int, stop: int) -> set[tuple[int, str]]:
        """The pairs of rows `start` to `stop` - 1, numbered from `start`."""
        out: set[tuple[int, str]] = set()
        for column, pos in self.positions.items():
            lo, hi = np.searchsorted(pos, [start, stop])
            out.update((i - start, column) for i in pos[lo:hi].tolist())
        return out

    def rows(self) -> np.ndarray:
        """Every row position with a reported cell, sorted."""
        parts = list(self.positions.values())
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _ambiguous_detail(decimal: str) -> str:
    other = "." if decimal == "," else ","
    return (f"'{other}' is not the decimal mark of this file ('{decimal}'): a thousands separator or a "
            f"decimal mark? If the delivery groups thousands with '{other}', declare thousands: "
            f"\"{other}\" for it in column_map.yaml; if '{other}' is its decimal mark, declare decimal: "
            f"\"{other}\"")


def _ambiguous_count_detail(decimal: str, thousands: str | None) -> str:
    """What to do about a mark in a whole-number column (a count, a year)."""
    other = "." if decimal == "," else ","
    if thousands:
        return (f"a whole number holds no decimal mark ('{decimal}'): write it in digits alone, or with "
                f"'{thousands}' grouping thousands as column_map.yaml declares")
    return (f"a whole number is written in digits alone: '{other}' or '{decimal}' in it may be a thousands "
            f"separator or a decimal mark. Write it without separators, or, if the delivery groups "
            f"thousands with '{other}', declare thousands: \"{other}\" for it in column_map.yaml")


def _any(frame: pl.DataFrame, tests: dict[str, pl.Expr]) -> dict[str, bool]:
    """Per name, whether the test holds in any row of `frame` (one pass for all tests)."""
    if not tests:
        return {}
    found = frame.select(e.any().alias(name) for name, e in tests.items()).row(0, named=True)
    return {name: bool(v) for name, v in found.items()}


def coerce(raw: RawFrame, kinds: dict[str, Kind], *, dot_thousands: bool = False,
           pad_tax_codes: bool | None = None, value_maps: dict[str, dict[str, str]] | None = None,
           scale: dict[str, float] | None = None) -> tuple[pl.DataFrame, list[Failure], CellSet]:
    """Parse every column of `raw` by its kind, vectorised.

    Returns the typed frame (same rows, plus ``source_row``), the failures of
    cells that are filled but unparseable (by row and column; the first
    `MAX_ROWS_KEPT` rows and the count), and the (row index, column) pairs of
    those cells, so that the schema does not report them a second time as empty.

    Numbers take a fast path (decimal mark replaced, cast); only a column where
    that leaves a filled cell unparsed, or where AIDA's dots may be thousands,
    or that holds the other mark than the decimal one (`RawFrame.check_marks`),
    is parsed again. With `check_marks` a number holding the other mark reads
    two ways (``352.300`` with a decimal comma: 352300 or 352.3?) and is
    refused as ``ambiguous_number``, unless the column map declares that mark
    as the thousands separator: then it is one (``1.234.567,5``), and a cell
    that does not group digits by three with it is unparseable. A whole-number
    column (a count, a year) holds no decimal mark either: ``2,0`` or ``2,000``
    employees is refused as ambiguous too. A cell an xlsx workbook stores as a
    number keeps its value (`RawFrame.excel_numbers`).
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
    marks = raw.check_marks
    other = "." if raw.decimal == "," else ","
    thousands = raw.thousands if raw.thousands == other else None

    # stage 1: stripped text (numbers stay raw: they are parsed first, cleaned only if needed).
    # A column is copied only where a cell needs it: a junk file's columns are hundreds of MB
    hint = raw.numbers
    plain_text = [c for c in texts if c not in num_text]
    typed_cells = raw.excel_numbers
    excel_cols = [c for c in num_text if typed_cells is not None and c in typed_cells.columns]
    padded = _any(df, {c: pl.col(c).str.contains(r"^\s|\s$|^$") for c in plain_text if schema[c] == pl.String})
    stage = df.select(
        pl.col("source_row"),
        *[(_as_text(c, schema[c]).str.strip_chars() if padded.get(c, True) else pl.col(c)).alias(f"__t_{c}")
          for c in plain_text],
        *[(pl.col(c).str.strip_chars().str.to_lowercase()
           .replace({str(a).lower(): str(b) for a, b in value_maps[c].items()})
           if c in value_maps else pl.col(c)).alias(f"__r_{c}") for c in num_text],
        *[pl.col(c).cast(pl.Float64, strict=False).alias(f"__v_{c}") for c in native],
        *[(pl.col(c).dt.date() if isinstance(schema[c], pl.Datetime) else pl.col(c)).alias(f"__d_{c}")
          for c in native_dates],
        *[raw.excel_numbers.get_column(c).alias(f"__x_{c}") for c in excel_cols],
    )
    # stage 2: empty -> null; native numbers: filled = neither null nor NaN (pandas's missing)
    decimal = raw.decimal
    stage2 = [pl.when(pl.col(f"__t_{c}") == "").then(None).otherwise(pl.col(f"__t_{c}")).alias(f"__t_{c}")
              for c in plain_text if padded.get(c, True)]
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
            if marks:
                need = need | r.str.contains(other, literal=True)
                if kind[c] == "integer":
                    need = need | r.str.contains(decimal, literal=True)
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
        if marks:
            stage = stage.with_columns(
                pl.col(f"__t_{c}").str.contains(other, literal=True).fill_null(False).alias(f"__a_{c}")
                for c in slow
            )
            stage = stage.with_columns(_marked_number(c, decimal, thousands) for c in slow)
            # a count (a whole number) holds no mark at all: '2,000' in it is two or two thousand
            counts = [c for c in slow if kind[c] == "integer"]
            if counts:
                stage = stage.with_columns(
                    ((pl.lit(False) if thousands else pl.col(f"__a_{c}"))
                     | pl.col(f"__t_{c}").str.contains(decimal, literal=True).fill_null(False)).alias(f"__a_{c}")
                    for c in counts
                )
        else:
            stage = stage.with_columns(
                number_from_text(pl.col(f"__t_{c}"), decimal=decimal, dot_thousands=dot_thousands).alias(f"__v_{c}")
                for c in slow
            )
    if excel_cols:
        # a cell the workbook stores as a number is that number, whatever its text would read as
        stage = stage.with_columns(pl.coalesce(pl.col(f"__x_{c}"), pl.col(f"__v_{c}")).alias(f"__v_{c}")
                                   for c in excel_cols)
    # cells of two readings: refused as ambiguous, not also as unparseable
    ambiguous = [c for c in slow if marks and (not thousands or kind[c] == "integer")]
    num_cols = [c for c in cols if kind[c] in _NUMERIC_KINDS]
    odd = _any(stage, {c: pl.col(f"__v_{c}").is_nan() | pl.col(f"__v_{c}").is_infinite() for c in num_cols})
    if any(odd.values()):
        stage = stage.with_columns(
            pl.when(pl.col(f"__v_{c}").is_nan() | pl.col(f"__v_{c}").is_infinite()).then(None)
            .otherwise(pl.col(f"__v_{c}")).alias(f"__v_{c}")
            for c in num_cols if odd[c]
        )
    # stage 4: dates from text
    date_text = [c for c in texts if kind[c] == "date"]
    if date_text:
        stage = stage.with_columns(date_from_text(pl.col(f"__t_{c}")).alias(f"__d_{c}") for c in date_text)

    # stage 5: typed columns and flags of unparseable cells
    exprs: list[pl.Expr] = []
    bad: list[pl.Expr] = []
    rule_of: dict[str, str] = {}
    # which text columns a change would touch (else the column is passed on as it is)
    lower, upper = r"[\p{Ll}\p{Lt}]", r"[\p{Lu}\p{Lt}]"
    changes = {"tax_code": lower + (r"|^\d{8,10}$" if pad_tax_codes else ""), "municipality": r"^\d{4,5}$",
               "ateco": r"[.\s]", "upper": lower, "lower": upper}
    touched = _any(stage, {c: pl.col(f"__t_{c}").str.contains(changes[kind[c]]) for c in plain_text
                           if kind[c] in changes and c not in value_maps})
    for c in cols:
        clear = ~pl.col(f"__a_{c}") if c in ambiguous else pl.lit(True)
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
            bad.append((filled & v.is_null() & clear).alias(f"__bad_{c}"))
            rule_of[c] = "unparseable_number"
        elif k == "flag":
            v = pl.col(f"__v_{c}")
            # any other number becomes 2, for the schema's 0/1 check to reject
            exprs.append(pl.when(v == 0).then(0).when(v == 1).then(1).when(v.is_not_null()).then(2)
                         .otherwise(None).cast(pl.Int8).alias(c))
            bad.append((filled & v.is_null() & clear).alias(f"__bad_{c}"))
            rule_of[c] = "unparseable_number"
        elif k == "integer":
            v = pl.col(f"__v_{c}")
            whole = v.is_not_null() & (v == v.round(0)) & (v.abs() < 2**31)
            out_dtype = pl.Int32 if c.endswith("year") else pl.Int64
            exprs.append(pl.when(whole).then(v).otherwise(None).cast(out_dtype).alias(c))
            bad.append((filled & ~whole & clear).alias(f"__bad_{c}"))
            rule_of[c] = "unparseable_integer"
        elif k == "date":
            d = pl.col(f"__d_{c}")
            exprs.append(d.alias(c))
            if c not in native_dates:
                bad.append((filled & d.is_null()).alias(f"__bad_{c}"))
                rule_of[c] = "unparseable_date"
        else:
            t = pl.col(f"__t_{c}")
            if not touched.get(c, True):
                e = t
            elif k == "tax_code":
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
    bad += [pl.col(f"__a_{c}").alias(f"__amb_{c}") for c in ambiguous]
    # flags apart: dropping them from `out` later would copy every column (polars re-aligns chunks)
    flagged = stage.select(*bad) if bad else None
    out = stage.select(*exprs, pl.col("source_row"))
    del stage
    # (flag column, column, rule), in the order of the columns
    flags = [(f"__bad_{c}", c, rule_of[c]) for c in rule_of]
    flags += [(f"__amb_{c}", c, "ambiguous_number") for c in ambiguous]
    flags.sort(key=lambda f: cols.index(f[1]))
    failures: list[Failure] = []
    skip = CellSet()
    if flagged is not None:
        source_row = out.get_column("source_row")
        for flag, c, rule in flags:
            hit = flagged.get_column(flag).arg_true()  # positions only: a junk file has millions
            if hit.len():
                detail = None
                if rule == "ambiguous_number":
                    detail = (_ambiguous_count_detail(decimal, thousands) if kind[c] == "integer"
                              else _ambiguous_detail(decimal))
                rows = source_row.gather(hit.head(MAX_ROWS_KEPT)).to_list()
                failures.append(Failure(rule, c, tuple(rows), hit.len(), header=raw.headers.get(c), detail=detail))
                skip.add(c, hit.to_numpy())
    return out, failures, skip


def _marked_number(c: str, decimal: str, thousands: str | None) -> pl.Expr:
    """Float64 of clean text column ``__t_<c>`` when marks are checked (``__a_<c>``: holds the other mark).

    A cell without the other mark is read with the decimal mark alone (so
    ``1.234.567`` in a decimal-point file is unparseable, not a guess); one with
    it is null (ambiguous), or with declared `thousands` the number its
    grouping says.
    """
    t, has = pl.col(f"__t_{c}"), pl.col(f"__a_{c}")
    plain = (t.str.replace(",", ".", literal=True) if decimal == "," else t).cast(pl.Float64, strict=False)
    value = pl.when(~has).then(plain)
    if thousands:
        grouped = t.str.replace_all(thousands, "", literal=True)
        if decimal == ",":
            grouped = grouped.str.replace(",", ".", literal=True)
        value = value.when(t.str.contains(_GROUPED[decimal])).then(grouped.cast(pl.Float64, strict=False))
    return value.otherwise(None).fill_nan(None).alias(f"__v_{c}")


# ---------------------------------------------------------------------------
# The schema, in bounded memory
# ---------------------------------------------------------------------------

#: rows the schema checks at a time when a frame is large or already known to be broken
VALIDATE_CHUNK_ROWS = 100_000
#: duplicated keys above which uniqueness is checked here, not by pandera (which
#: builds its failure cases at some 5 KB per duplicated row)
PANDERA_DUPLICATES = 10_000


def _kept(f: Failure) -> Failure:
    return f if len(f.rows) <= MAX_ROWS_KEPT else Failure(f.rule, f.column, f.rows[:MAX_ROWS_KEPT], f.n_rows,
                                                          f.header, f.detail)


def schema_failures(schema: RuleSchema, frame: pl.DataFrame, *, file: str | Path,
                    headers: dict[str, str] | None = None, parsed: list[Failure] = (),
                    skip: CellSet | None = None) -> tuple[list[Failure], int]:
    """(the parse failures `parsed` plus the schema's, the number of data rows rejected).

    Every failure keeps its first `MAX_ROWS_KEPT` rows; the counts are exact.
    A frame of a usual delivery (up to `VALIDATE_CHUNK_ROWS` rows, few
    duplicated keys) is validated in one call, as always. A larger one, or one
    with many duplicated keys, is validated a chunk of rows at a time, the key's
    uniqueness checked here on the whole frame: pandera's failure cases of a
    junk file of a million rows would take gigabytes.
    """
    skip = skip if skip is not None else CellSet()
    unique = list(schema.schema.unique or [])
    present = [c for c in unique if c in frame.columns]
    dup = frame.select(present).is_duplicated() if present and frame.height else None
    n_dup = int(dup.sum()) if dup is not None else 0
    step = VALIDATE_CHUNK_ROWS if len(skip) <= VALIDATE_CHUNK_ROWS else max(1, VALIDATE_CHUNK_ROWS // 4)
    found: list[Failure] = []
    rows = np.empty(0, dtype=np.int64)
    if frame.height <= step and n_dup <= PANDERA_DUPLICATES:
        found = schema.validate(frame, file=file, headers=headers, skip=skip)
        rows = np.unique(np.fromiter((r for f in found for r in f.rows), dtype=np.int64))
        found = [_kept(f) for f in found]
    else:
        merged: dict[tuple, list] = {}
        if n_dup:
            dup_rows = frame.get_column("source_row").filter(dup).to_numpy().astype(np.int64)
            merged[("dup",)] = [schema.unique_rule or "duplicate_key", ", ".join(unique), dup_rows[:MAX_ROWS_KEPT].tolist(),
                                n_dup, None, None]
            rows = dup_rows
        bare_schema = copy.copy(schema.schema)
        bare_schema.unique = None
        bare = RuleSchema(schema.name, bare_schema, schema.rule_of, None, schema.details)
        for start in range(0, frame.height, step):
            part = frame.slice(start, step)
            for f in bare.validate(part, file=file, headers=headers, skip=skip.window(start, start + step)):
                key = (f.rule, f.column, f.header, f.detail)
                entry = merged.setdefault(key, [f.rule, f.column, [], 0, f.header, f.detail])
                entry[2].extend(f.rows[:MAX_ROWS_KEPT - len(entry[2])])
                entry[3] += f.n_rows
                if f.rows:
                    rows = np.union1d(rows, np.asarray(f.rows, dtype=np.int64))
        found = [Failure(rule, column, tuple(kept), n, header, detail)
                 for rule, column, kept, n, header, detail in merged.values()]
    pos = skip.rows()
    if pos.size:
        rows = np.union1d(rows, frame.get_column("source_row").to_numpy()[pos])
    return list(parsed) + found, int(rows.size)


def read_any(path: Path, source: SourceMap, *, required: list[str], optional: list[str] = (),
             patterns_ok: bool = False, allowed: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".xlsx"),
             numeric: Callable[[str], bool] | None = None, strict_numbers: bool = True,
             check_marks: bool = False) -> RawFrame:
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
                              numeric=numeric, strict_numbers=strict_numbers, check_marks=check_marks)
    if ext == ".parquet":
        return read_parquet(path, source, required=required, optional=optional, patterns_ok=patterns_ok,
                            check_marks=check_marks)
    return read_xlsx(path, source, required=required, optional=optional, patterns_ok=patterns_ok, numeric=numeric)


def year_columns(columns: list[str], stems: tuple[str, ...]) -> list[int]:
    """Years of wide columns named ``<stem>_<YYYY>``."""
    pat = re.compile(rf"^({'|'.join(map(re.escape, stems))})_(\d{{4}})$")
    return sorted({int(m.group(2)) for c in columns if (m := pat.match(c))})

