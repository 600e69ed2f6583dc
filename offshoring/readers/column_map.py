"""`column_map.yaml`: a delivery's own headers -> the contract's canonical names.

A user with real files writes one mapping per source and renames nothing by
hand. Layout (see ``config/column_map.example.yaml``)::

    survey:
      encoding: cp1252        # optional: utf-8 | cp1252 (detected when absent)
      separator: ";"          # optional (detected from the header line)
      decimal: ","            # optional (',' with ';' separators, '.' otherwise)
      thousands: "."          # optional: the delivery groups thousands with '.' (or ',')
      columns:
        CODICE_FISCALE: tax_code
        ANNO_IMPOSTA: year
      values:                 # optional: delivery value -> canonical value
        market_area: {locale: local, nazionale: national}
    aida_firms:
      sheet: 0                # optional: sheet index or name of an xlsx export
      columns:
        "Codice fiscale": tax_code
        "Ricavi delle vendite EUR {year}": turnover_{year}   # one entry for all years
      scale: {turnover: 1000} # optional: multiply (AIDA in thousand EUR)

A source may also be a plain ``header: canonical`` mapping. Headers match after
collapsing whitespace (line breaks inside Excel header cells included) and
ignoring case; a header already equal to a canonical name needs no entry.
Several headers may map to the same name (one per delivery year); two of them
in the same file are an error, and so is one header written twice.

Without ``thousands`` a survey number holding the other mark than the decimal
one (``352.300`` in a decimal-comma file) reads two ways and is refused; with
it, that mark is read as a thousands separator.

Every key is checked when the map is read (the command line's pre-flight reads it
before any run): a source, an option, a canonical name, a ``values:`` column or a
``scale:`` variable the readers do not use, or a factor that is not a positive
number, raises `ColumnMapError` (a `ContractError`) naming the file, the key and
the nearest valid name. A key left unread would load the data otherwise than the
map says (``scale: {turnovers: 1000}`` left AIDA in thousand EUR).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from offshoring.contract import ContractError, Failure
from offshoring.readers.layout import PlainFailure

SOURCES = ("survey", "aida_firms", "aida_subsidiaries", "llma", "census_employment")
_OPTIONS = {"columns", "encoding", "separator", "decimal", "thousands", "sheet", "values", "scale"}

# The contract's columns per source, as the readers name them (kept here, without the readers'
# polars and pandera, so that the command line's pre-flight can check a map before any run;
# tests/test_readers.py checks that they are the readers' own).
_SURVEY_AMOUNTS = ("turnover", "employees", "value_added", "wage_costs", "net_income", "roi", "export_share",
                   "subcontracting_italy", "subcontracting_europe", "subcontracting_north_africa",
                   "subcontracting_east_asia", "subcontracting_other")
_SURVEY_FLAGS = ("credit_access", "high_value_added", "supplier")
AIDA_STEMS = ("turnover", "employees")
COLUMNS: dict[str, tuple[str, ...]] = {
    "survey": ("tax_code", "year", "filing_date", "ateco_2007", "municipality_code", *_SURVEY_AMOUNTS[:7],
               "credit_access", "market_area", "high_value_added", "supplier", *_SURVEY_AMOUNTS[7:]),
    "aida_firms": ("tax_code", "company_name", "province", "ateco_2007",
                   *(f"{stem}_{{year}}" for stem in AIDA_STEMS)),
    "aida_subsidiaries": ("tax_code", "subsidiary_name", "country_iso2", "ownership_pct", "first_year",
                          "last_year"),
    "llma": ("municipality_code", "llma_code", "llma_name"),
    "census_employment": ("llma_code", "ateco_division", "size_class", "local_units", "employees"),
}
#: the variables ``scale:`` multiplies: the readers' amount columns (AIDA's per variable, every year)
SCALED: dict[str, tuple[str, ...]] = {"survey": _SURVEY_AMOUNTS, "aida_firms": AIDA_STEMS}
#: the columns whose codes ``values:`` maps (only the survey's reader applies it: its numbers,
#: flags, year and market area)
VALUE_MAPPED: dict[str, tuple[str, ...]] = {"survey": ("year", *_SURVEY_AMOUNTS, *_SURVEY_FLAGS, "market_area")}
_WIDE_NAME = re.compile(rf"^({'|'.join(AIDA_STEMS)})_(\d{{4}}|\{{year\}})$")


class ColumnMapError(ContractError):
    """``column_map.yaml`` cannot be used as written: one plain sentence naming the file and the
    key (a `ContractError`, so that the command line and the assets say it as they say a
    refused delivery; nothing is loaded)."""

    def __init__(self, origin: str | Path, key: str, problem: str):
        self.key = key
        detail = f"{key}: {problem}" if key else problem
        super().__init__(origin, [PlainFailure("invalid_column_map", None, detail=detail)])
        self.args = (f"{origin}: {f'{key}: ' if key else ''}{problem}. Correct it in the column map (see "
                     f"config/column_map.example.yaml) and run again.",)


def _nearest(name: Any, choices: Any) -> str:
    hit = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{hit[0]}'?)" if hit else ""


def _listed(names: Any) -> str:
    return ", ".join(str(n) for n in names)


def _mapping(value: Any, origin: str, key: str, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ColumnMapError(origin, key, f"must be a mapping of {what}, not {type(value).__name__}")
    return value


def _is_column(source: str, name: str) -> bool:
    return name in COLUMNS[source] or (source == "aida_firms" and bool(_WIDE_NAME.match(name)))


def normalise_header(header: str) -> str:
    return " ".join(str(header).replace("\ufeff", "").split()).casefold()


@dataclass
class SourceMap:
    columns: dict[str, str] = field(default_factory=dict)  # normalised header -> canonical
    patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    encoding: str | None = None
    separator: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    sheet: str | int | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: Any, origin: str) -> SourceMap:
        """One source's entry, every key checked: an option, a column, a variable or a factor
        that does not fit raises `ColumnMapError` naming the file and the key (with the nearest
        valid name), since a key left unread would load the data otherwise than written."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ColumnMapError(origin, name, "must be a mapping (the source's options, or "
                                               "delivery header: canonical name)")
        if not set(data) & _OPTIONS:
            for header, canonical in data.items():  # a plain header -> canonical mapping
                if not (isinstance(canonical, str) and _is_column(name, canonical)) and _nearest(header, _OPTIONS):
                    raise ColumnMapError(origin, f"{name}.{header}", f"'{header}' is no option of the column "
                                         f"map{_nearest(header, _OPTIONS)}; options: {_listed(sorted(_OPTIONS))}")
            data = {"columns": data}
        elif not set(data) <= _OPTIONS:
            unknown = sorted(str(k) for k in set(data) - _OPTIONS)
            raise ColumnMapError(origin, f"{name}.{unknown[0]}", f"'{unknown[0]}' is no option of the column "
                                 f"map{_nearest(unknown[0], _OPTIONS)}; options: {_listed(sorted(_OPTIONS))}")
        out = cls()
        for header, canonical in _mapping(data.get("columns"), origin, f"{name}.columns",
                                          "delivery header: canonical name").items():
            where = f"{name}.columns[{str(header)!r}]"
            if not isinstance(canonical, str):
                raise ColumnMapError(origin, where, "must be a column name")
            if not _is_column(name, canonical):
                raise ColumnMapError(origin, where, f"maps to '{canonical}', which is no column of "
                                     f"{name}{_nearest(canonical, COLUMNS[name])}; the columns: "
                                     f"{_listed(COLUMNS[name])}")
            key = normalise_header(header)
            if "{year}" in key:
                regex = re.escape(key).replace(re.escape("{year}"), r"(?P<year>\d{4})")
                out.patterns.append((re.compile(f"^{regex}$"), canonical))
            else:
                out.columns[key] = canonical
        sep = data.get("separator")
        if sep is not None and (not isinstance(sep, str) or len(sep.replace("\\t", "\t")) != 1):
            raise ColumnMapError(origin, f"{name}.separator", "must be one character (such as ';', ',', "
                                 "'|' or \"\\t\" for a tab)")
        out.separator = sep.replace("\\t", "\t") if sep else None
        dec = data.get("decimal")
        if dec is not None and dec not in (",", "."):
            raise ColumnMapError(origin, f"{name}.decimal", "must be ',' or '.'")
        out.decimal = dec
        thousands = data.get("thousands")
        if thousands is not None and thousands not in (",", "."):
            raise ColumnMapError(origin, f"{name}.thousands", "must be ',' or '.'")
        if thousands is not None and thousands == dec:
            raise ColumnMapError(origin, f"{name}.thousands", f"{name}.thousands and {name}.decimal are both "
                                 f"{dec!r}; one of them is wrong")
        out.thousands = thousands
        enc = data.get("encoding")
        if enc is not None:
            enc = str(enc).lower().replace("_", "-")
            if enc in ("windows-1252", "cp-1252"):
                enc = "cp1252"
            if enc not in ("utf-8", "utf8", "cp1252", "latin-1", "iso-8859-1", "iso-8859-15"):
                raise ColumnMapError(origin, f"{name}.encoding", f"{enc!r} is not supported; use utf-8 or cp1252")
        out.encoding = enc
        sheet = data.get("sheet")
        if sheet is not None and (isinstance(sheet, bool) or not isinstance(sheet, (int, str))
                                  or (isinstance(sheet, int) and sheet < 0)):
            raise ColumnMapError(origin, f"{name}.sheet", "must be a sheet's index (0 for the first) or its name")
        out.sheet = sheet
        out.values = _values(name, data.get("values"), origin)
        out.scale = _scale(name, data.get("scale"), origin)
        return out

    def target(self, header: str) -> str | None:
        key = normalise_header(header)
        if key in self.columns:
            return self.columns[key]
        for regex, template in self.patterns:
            m = regex.match(key)
            if m:
                return template.replace("{year}", m.group("year"))
        return None


def _unknown_variable(source: str, var: str, valid: tuple[str, ...], option: str) -> str:
    stem = re.sub(r"_\d{4}$", "", var)
    if source == "aida_firms" and stem != var and stem in valid:
        return f"'{var}' names one year; {option} applies to a variable in every year: write '{stem}'"
    if var in COLUMNS[source] or (source == "aida_firms" and _WIDE_NAME.match(var)):
        return f"{option} cannot name '{var}' (its reader does not apply it there); it may name {_listed(valid)}"
    return f"'{var}' is no variable of {source}{_nearest(var, valid)}; {option} may name {_listed(valid)}"


def _values(source: str, data: Any, origin: str) -> dict[str, dict[str, str]]:
    data = _mapping(data, origin, f"{source}.values", "column: {delivery value: canonical value}")
    valid = VALUE_MAPPED.get(source, ())
    if data and not valid:
        raise ColumnMapError(origin, f"{source}.values", f"values are read only for "
                             f"{_listed(VALUE_MAPPED)}; {source}'s reader does not map values")
    out = {}
    for var, codes in data.items():
        where = f"{source}.values.{var}"
        if str(var) not in valid:
            raise ColumnMapError(origin, where, _unknown_variable(source, str(var), valid, "values"))
        codes = _mapping(codes, origin, where, "delivery value: canonical value")
        out[str(var)] = {str(a): str(b) for a, b in codes.items()}
    return out


def _scale(source: str, data: Any, origin: str) -> dict[str, float]:
    data = _mapping(data, origin, f"{source}.scale", "variable: factor")
    valid = SCALED.get(source, ())
    if data and not valid:
        raise ColumnMapError(origin, f"{source}.scale", f"scale is read only for {_listed(SCALED)}; "
                             f"{source}'s reader does not scale")
    out = {}
    for var, factor in data.items():
        where = f"{source}.scale.{var}"
        if str(var) not in valid:
            raise ColumnMapError(origin, where, _unknown_variable(source, str(var), valid, "scale"))
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) \
                or factor <= 0:
            raise ColumnMapError(origin, where, f"the factor must be a positive number, not {factor!r} "
                                 f"(1000 for an export in thousand EUR)")
        out[str(var)] = float(factor)
    return out


@dataclass
class ColumnMap:
    sources: dict[str, SourceMap] = field(default_factory=dict)
    path: Path | None = None

    def source(self, name: str) -> SourceMap:
        return self.sources.get(name) or SourceMap()

    @classmethod
    def empty(cls) -> ColumnMap:
        return cls()


def load_column_map(path: str | Path | None = None) -> ColumnMap:
    """Read a column map; `path` may be the YAML file or the raw folder holding it.

    No file means no renaming (the delivery uses the canonical names).
    """
    if path is None:
        return ColumnMap()
    p = Path(path)
    if p.is_dir():
        p = p / "column_map.yaml"
        if not p.exists():
            return ColumnMap()
    with open(p, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return ColumnMap(_sources(data, str(p)), p)


def _sources(data: Any, origin: str) -> dict[str, SourceMap]:
    if not isinstance(data, dict):
        raise ColumnMapError(origin, "", f"the file must be a mapping of sources ({_listed(SOURCES)}), "
                                                 f"not {type(data).__name__}")
    for k in data:
        if k not in SOURCES:
            raise ColumnMapError(origin, str(k), f"'{k}' is no source{_nearest(k, SOURCES)}; the sources: "
                                 f"{_listed(SOURCES)}")
    return {k: SourceMap.from_dict(k, v, origin) for k, v in data.items()}


def as_column_map(value: ColumnMap | dict | str | Path | None, default_dir: Path | None = None) -> ColumnMap:
    """Accept a ColumnMap, a dict (as in the YAML), a path, or None (look in `default_dir`)."""
    if isinstance(value, ColumnMap):
        return value
    if isinstance(value, dict):
        return ColumnMap(_sources(value, "column map"))
    if value is None:
        return load_column_map(default_dir) if default_dir is not None else ColumnMap()
    return load_column_map(value)


@lru_cache(maxsize=1)
def _tax_code() -> re.Pattern[str]:
    from offshoring.validation import TAX_CODE_RE  # pandera: only when a delivery is read

    return re.compile(TAX_CODE_RE)


_NAME_LIKE = re.compile(r"^[^\W\d][\w .'’%&()/+-]{0,63}$")


def plausible_header(header: str) -> bool:
    """Whether a header cell looks like a column name, safe to repeat in a message.

    A delivery without its header line has its first data row taken for the
    header: its cells (tax codes among them, personal data) must not be echoed.
    A name starts with a letter, has at most 64 characters, at most three digits
    (``turnover_2008`` is left out too: better unsaid than a code said) and no
    word shaped like a tax code (a 16-character personal code may hold only
    letters).
    """
    text = " ".join(str(header).split())
    if not _NAME_LIKE.match(text) or sum(ch.isdigit() for ch in text) > 3:
        return False
    return not any(_tax_code().match(word) for word in re.split(r"[\s_.'’/()+&%-]+", text.upper()))


def _describe_found(headers: list[str], matched: set[str]) -> str:
    """The headers found, for a message: those that matched a column, and others that look like names."""
    shown = [h for h in headers if h in matched or plausible_header(h)]
    text = ", ".join(repr(h) for h in shown) if shown else "no column names"
    hidden = len(headers) - len(shown)
    if hidden:
        text += (f" and {hidden} field{'s' if hidden > 1 else ''} that "
                 f"{'do' if hidden > 1 else 'does'} not look like column names (not shown)")
    if headers and not matched:
        text += (f"; none of the {len(headers)} fields of the first line is a column of the contract: "
                 f"is the header line missing?")
    return text


def rename_columns(headers: list[str], source: SourceMap, *, required: list[str], optional: list[str],
                   file: str | Path, patterns_ok: bool = False,
                   wide_stems: tuple[str, ...] = ("turnover", "employees")) -> tuple[dict[str, str], dict[str, str]]:
    """(delivery header -> canonical, canonical -> delivery header) for the wanted columns.

    `headers` are the file's header cells as written, repeats included.
    Raises `ContractError` listing the missing columns and the headers found
    that look like column names (never a cell of a data row taken for the
    header), or naming a column two headers map to (two spellings, or one
    header written twice). Other columns are dropped.
    """
    canonical = {normalise_header(c): c for c in [*required, *optional]}
    wide = re.compile(rf"^({'|'.join(wide_stems)})_(\d{{4}})$") if patterns_ok else None
    pairs: list[tuple[str, str]] = []
    for h in headers:
        target = source.target(h)
        if target is None:
            key = normalise_header(h)
            if key in canonical:
                target = canonical[key]
            elif wide is not None and wide.match(key):
                target = key
        if target is None:
            continue
        if target not in canonical.values() and not (wide is not None and wide.match(target)):
            continue
        pairs.append((h, target))
    by_target: dict[str, list[str]] = {}
    for h, t in pairs:
        by_target.setdefault(t, []).append(h)
    clashes = {t: hs for t, hs in by_target.items() if len(hs) > 1}
    if clashes:
        raise ContractError(file, [Failure("duplicate_columns", t, detail=_clash(hs))
                                   for t, hs in sorted(clashes.items())])
    missing = [c for c in required if c not in by_target]
    if missing:
        raise ContractError(file, [Failure(
            "missing_columns", None,
            detail=f"missing: {', '.join(missing)}; found: {_describe_found(list(headers), {h for h, _ in pairs})}",
        )])
    return dict(pairs), {t: hs[0] for t, hs in by_target.items()}


def _clash(headers: list[str]) -> str:
    """Words for headers mapping to one column (they matched a name, so they are names, not cells)."""
    if len(set(headers)) == 1:
        return f"the header {headers[0]!r} appears {len(headers)} times; keep one of those columns"
    return f"headers {', '.join(repr(h) for h in headers)} all map to it; keep one of those columns"
