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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from offshoring.validation import TAX_CODE_RE, ContractError, Failure

_TAX_CODE = re.compile(TAX_CODE_RE)

SOURCES = ("survey", "aida_firms", "aida_subsidiaries", "llma", "census_employment")
_OPTIONS = {"columns", "encoding", "separator", "decimal", "thousands", "sheet", "values", "scale"}


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
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"{origin}: '{name}' must be a mapping")
        if not set(data) & _OPTIONS:
            data = {"columns": data}  # a plain header -> canonical mapping
        elif not set(data) <= _OPTIONS:
            unknown = sorted(set(data) - _OPTIONS)
            raise ValueError(f"{origin}: '{name}' has unknown keys {unknown}; allowed: {sorted(_OPTIONS)}")
        out = cls()
        for header, canonical in (data.get("columns") or {}).items():
            if not isinstance(canonical, str):
                raise ValueError(f"{origin}: {name}.columns[{header!r}] must be a column name")
            key = normalise_header(header)
            if "{year}" in key:
                regex = re.escape(key).replace(re.escape("{year}"), r"(?P<year>\d{4})")
                out.patterns.append((re.compile(f"^{regex}$"), canonical))
            else:
                out.columns[key] = canonical
        sep = data.get("separator")
        if sep is not None and (not isinstance(sep, str) or len(sep.replace("\\t", "\t")) != 1):
            raise ValueError(f"{origin}: {name}.separator must be one character")
        out.separator = sep.replace("\\t", "\t") if sep else None
        dec = data.get("decimal")
        if dec is not None and dec not in (",", "."):
            raise ValueError(f"{origin}: {name}.decimal must be ',' or '.'")
        out.decimal = dec
        thousands = data.get("thousands")
        if thousands is not None and thousands not in (",", "."):
            raise ValueError(f"{origin}: {name}.thousands must be ',' or '.'")
        if thousands is not None and thousands == dec:
            raise ValueError(f"{origin}: {name}.thousands and {name}.decimal are both {dec!r}")
        out.thousands = thousands
        enc = data.get("encoding")
        if enc is not None:
            enc = str(enc).lower().replace("_", "-")
            if enc in ("windows-1252", "cp-1252"):
                enc = "cp1252"
            if enc not in ("utf-8", "utf8", "cp1252", "latin-1", "iso-8859-1", "iso-8859-15"):
                raise ValueError(f"{origin}: {name}.encoding {enc!r} not supported")
        out.encoding = enc
        out.sheet = data.get("sheet")
        out.values = {str(k): {str(a): str(b) for a, b in (v or {}).items()} for k, v in (data.get("values") or {}).items()}
        out.scale = {str(k): float(v) for k, v in (data.get("scale") or {}).items()}
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
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping of sources ({', '.join(SOURCES)})")
    unknown = sorted(set(data) - set(SOURCES))
    if unknown:
        raise ValueError(f"{p}: unknown sources {unknown}; known: {list(SOURCES)}")
    return ColumnMap({k: SourceMap.from_dict(k, v, str(p)) for k, v in data.items()}, p)


def as_column_map(value: ColumnMap | dict | str | Path | None, default_dir: Path | None = None) -> ColumnMap:
    """Accept a ColumnMap, a dict (as in the YAML), a path, or None (look in `default_dir`)."""
    if isinstance(value, ColumnMap):
        return value
    if isinstance(value, dict):
        return ColumnMap({k: SourceMap.from_dict(k, v, "column map") for k, v in value.items()})
    if value is None:
        return load_column_map(default_dir) if default_dir is not None else ColumnMap()
    return load_column_map(value)


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
    return not any(_TAX_CODE.match(word) for word in re.split(r"[\s_.'’/()+&%-]+", text.upper()))


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
