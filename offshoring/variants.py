"""Named specification variants of Tables 2 and 3: the robustness checks a referee asks for.

A variant is one small YAML file, an overlay on the baseline study specification:

    config/variants/table2/logit.yaml          (shipped)
    $OFFSHORING_CONFIG_DIR/variants/table2/<name>.yaml   (the user's: adds a variant, or
                                                          replaces the shipped one of that name)

Keys of a variant file (anything else is refused, naming the file and the nearest key):

``description``   one sentence: what differs from the baseline (the column's footnote). It
                  names settings through placeholders, never as constants:
                  ``{baseline.<key>}`` is the baseline's setting under the current
                  specification, ``{variant.<key>}`` the variant's own; keys ``se`` (the
                  standard errors in words), ``quadrature`` (points and rule), ``ties``,
                  ``years``, ``ceilings`` (the turnover ceilings), and any plain setting of
                  the model specification (``quad_points``, ``cov_type``, ``link``,
                  ``first_year``, ...). An unknown key is refused, naming the valid ones;
``order``         where its column goes (lower first; the baseline is always column 1);
``enabled``       false drops a shipped variant (a user's copy with ``enabled: false``);
``estimator``     Table 3 only: ``cox`` (default) or ``grouped_ph`` (complementary log-log
                  on the spell-years);
``model``         keys of the model specification (probit_table2.yaml or cox_table3.yaml),
                  each replacing the baseline's key whole, as a user's copy of the file does
                  (a variant listing covariates puts back those a user removed from the
                  baseline: the robustness table names every list and dummy set in which
                  the column's specification differs from the baseline's, `spec_differences`);
``thresholds``    keys of thresholds.yaml merged key by key (e.g. the turnover ceilings);
``panel``         keys of panel.yaml merged key by key;
``district_list`` a list of district LLMAs in the raw folder (path relative to it) used
                  instead of the computed flags; the variant is fitted when the file is there.

A variant with ``thresholds``, ``panel`` or ``district_list`` needs its own panel: it is
built by the same library code as the baseline's, in a scratch database attached beside
the warehouse whose raw and geography inputs are views of the warehouse's tables, so
the warehouse's own tables are never written. Every other variant fits the baseline's
panel (``panel.model_panel`` or ``panel.spell_years``).

A variant whose effective specification (estimator, model specification without its
labels, thresholds, panel settings, district list: `Variant.fit_spec`) equals the
baseline's under the current settings (say ``oim_errors`` when the user's baseline already
uses OIM errors) is not fitted and has no column of its own: the robustness table's notes
say "<variant>: identical to the baseline under the current settings". Its stored fit, if
any, is left as it was (its fingerprint still says what it was made from, so it is reused
when the settings differ again).

Every fit also records `fit_spec` (``fit_spec_sha256``, ``fit_spec_json`` in
``models.fit_stats``): a report refuses to show a fit whose ``fit_spec`` differs from the
current one (another specification's estimates under this one's labels), and does not
refuse when only the labels or other report settings changed.

Each fit records a fingerprint of what it was made from (code version, the variant's
effective specification, the content hash of its input tables, the district list's
SHA-256): a variant whose fingerprint has not changed is not fitted again.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

from pydantic import BaseModel, ConfigDict

from offshoring.spec import _jsonable

#: the tables with variants: table -> (model part of the spec, estimators, baseline's main fits)
TABLES = {
    "table2": {"part": "probit", "estimators": ("probit",),
               "main_fits": {"probit": "outsourcing_probit"}},
    "table3": {"part": "cox", "estimators": ("cox", "grouped_ph"),
               "main_fits": {"cox": "backshoring_cox", "grouped_ph": "backshoring_grouped_ph"}},
}
VARIANTS_DIR = "variants"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class VariantFile(BaseModel):
    # strict, as every other settings file: `enabled: "no"` is not false, `order: "3"` not 3
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    description: str
    order: int = 100
    enabled: bool = True
    estimator: Literal["probit", "cox", "grouped_ph"] | None = None
    model: dict[str, Any] = {}
    thresholds: dict[str, Any] = {}
    panel: dict[str, Any] = {}
    district_list: str | None = None


@dataclass(frozen=True)
class Variant:
    """One variant, its effective specification resolved against the baseline."""

    table: str
    name: str
    description: str
    order: int
    estimator: str
    model_spec: Any  # DynamicSpec (table2) or CoxSpec (table3)
    thresholds: Any  # offshoring.spec.Thresholds
    panel: Any  # offshoring.spec.PanelSpec
    district_list: str | None
    overlay: Mapping[str, Any] = field(default_factory=dict)
    file: str = ""

    @property
    def rebuilds_panel(self) -> bool:
        return bool(self.overlay.get("thresholds") or self.overlay.get("panel") or self.district_list)

    @property
    def main_fit(self) -> str | None:
        """The pipeline's own fit this variant is (the baseline, the grouped-time companion):
        it is read, never refitted."""
        if self.overlay.get("model") or self.rebuilds_panel:
            return None
        return TABLES[self.table]["main_fits"].get(self.estimator)

    @property
    def is_baseline(self) -> bool:
        return self.main_fit is not None and self.estimator == TABLES[self.table]["estimators"][0]

    @property
    def asset_name(self) -> str:
        return f"{self.table}_variant_{self.name}"

    @property
    def fit_key(self) -> str:
        """The model name its fit is stored under in models.coefficients / models.fit_stats."""
        return self.main_fit or self.asset_name

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "name": self.name, "description": self.description,
                "order": self.order, "estimator": self.estimator, "overlay": _jsonable(self.overlay),
                "file": self.file}

    def fit_spec(self, districts: Any = None) -> dict[str, Any]:
        """What the variant's estimates depend on (`fit_spec`): its model specification
        without its labels, thresholds, panel settings, district list (and settings)."""
        return fit_spec(self.model_spec, estimator=self.estimator, thresholds=self.thresholds,
                        panel=self.panel, districts=districts, district_list=self.district_list)

    def same_fit_as(self, other: "Variant") -> bool:
        """True when this variant's estimates are the other's: same estimator, model
        specification (labels aside), thresholds, panel settings and district list."""
        return self.table == other.table and self.fit_spec() == other.fit_spec()

    def spec_json(self) -> str:
        """The variant's effective specification (what its fit depends on), canonical JSON."""
        import dataclasses

        return json.dumps({
            "table": self.table, "estimator": self.estimator,
            "model": _jsonable(dataclasses.asdict(self.model_spec)),
            "thresholds": self.thresholds.model_dump(mode="json"),
            "panel": self.panel.model_dump(mode="json"),
            "district_list": self.district_list,
        }, sort_keys=True, default=str)


# --------------------------------------------------------------------------- what a fit depends on

#: parts of thresholds.yaml that gate the loading of a delivery: no estimate depends on them
_LOAD_ONLY_THRESHOLDS = ("delivery_gate", "plausibility")


def fit_spec(model_spec: Any, *, estimator: str, thresholds: Any, panel: Any, districts: Any = None,
             district_list: str | None = None) -> dict[str, Any]:
    """The part of the study specification a fit's estimates depend on: the estimator, the
    model specification without its row labels (a label is the report's, not the model's),
    the thresholds the panel is built with (not the delivery gate), the panel settings, the
    district settings and list. Recorded with every fit (`fit_spec_record`), so a report can
    tell a fit made under other model settings from one whose labels only were edited."""
    import dataclasses

    model = _jsonable(dataclasses.asdict(model_spec))
    model.pop("labels", None)
    th = {k: v for k, v in thresholds.model_dump(mode="json").items() if k not in _LOAD_ONLY_THRESHOLDS}
    return {"estimator": estimator, "model": model, "thresholds": th, "panel": panel.model_dump(mode="json"),
            "districts": None if districts is None else _jsonable(dataclasses.asdict(districts)),
            "district_list": district_list}


def fit_spec_sha256(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
                          .encode()).hexdigest()


def fit_spec_record(spec: Mapping[str, Any]) -> dict[str, str]:
    """The fit statistics that record `fit_spec` (its hash, and its JSON so a refusal can name
    the settings that differ)."""
    return {"fit_spec_sha256": fit_spec_sha256(spec),
            "fit_spec_json": json.dumps(spec, sort_keys=True, default=str)}


def fit_spec_differences(recorded_json: str | None, current: Mapping[str, Any]) -> list[str]:
    """The settings (dotted keys, e.g. ``model.cov_type``) where a recorded fit spec differs
    from `current`; empty when the recorded one is unknown."""
    try:
        old = json.loads(recorded_json) if recorded_json else None
    except ValueError:
        old = None
    if not isinstance(old, Mapping):
        return []
    new = json.loads(json.dumps(current, sort_keys=True, default=str))
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        elif a != b:
            out.append(path)

    walk(old, new, "")
    return out


# --------------------------------------------------------------------------- descriptions

_PLACEHOLDER = re.compile(r"\{(baseline|variant)\.([a-z_]+)\}")


def setting_words(model_spec: Any, thresholds: Any) -> dict[str, str]:
    """The values a variant's description may name, as ``{baseline.<key>}`` (the baseline's
    setting) or ``{variant.<key>}`` (the variant's own): ``se`` (the standard errors in words),
    ``quadrature`` (points and rule), ``ties``, ``years``, ``ceilings`` (the turnover
    ceilings), ``link``, and any plain setting of the model specification by its key
    (``quad_points``, ``cov_type``, ``first_year``, ...)."""
    import dataclasses

    from offshoring.reports import estimation as words

    out: dict[str, str] = {}
    for f in dataclasses.fields(model_spec):
        v = getattr(model_spec, f.name)
        if v is None or isinstance(v, (str, int, float, bool)):
            out[f.name] = "null" if v is None else str(v)
    if hasattr(model_spec, "cov_type"):
        out["se"] = words.se_text(model_spec.cov_type, getattr(model_spec, "cluster_correction", None))
    if hasattr(model_spec, "quad_points"):
        out["quadrature"] = words.quadrature_text(model_spec.quad_points, model_spec.adaptive)
    if hasattr(model_spec, "ties"):
        out["ties"] = {"efron": "Efron", "breslow": "Breslow"}.get(str(model_spec.ties), str(model_spec.ties))
    if hasattr(model_spec, "first_year"):
        out["years"] = words.years_text(model_spec.first_year, model_spec.last_year)
    out["ceilings"] = words.ceilings_text(thresholds)
    return out


def _names(seq: Any) -> list[str]:
    return [str(x) for x in (seq or ())]


def spec_differences(baseline: Any, variant: Any) -> list[str]:
    """The lists and dummy sets in which a variant's model specification differs from the
    baseline's (labels aside), in words: "covariates without roi; with share_destination_all".

    A variant's ``model`` key replaces the baseline's whole: a variant that lists covariates
    puts back the ones a user removed from the baseline. Its hand-written description names
    the change it means; this names every one it makes, under the current settings."""
    import dataclasses

    out: list[str] = []
    for f in dataclasses.fields(variant):
        if f.name == "labels" or not hasattr(baseline, f.name):
            continue
        a, b = getattr(baseline, f.name), getattr(variant, f.name)
        if a == b:
            continue
        if f.name == "dummies":
            a, b = dict(a or {}), dict(b or {})
            parts = []
            if [k for k in a if k not in b]:
                parts.append("without " + ", ".join(k for k in a if k not in b))
            if [k for k in b if k not in a]:
                parts.append("with " + ", ".join(k for k in b if k not in a))
            changed = [k for k in a if k in b and a[k] != b[k]]
            if changed:
                parts.append("other levels of " + ", ".join(changed))
            if parts:
                out.append("dummies " + "; ".join(parts))
        elif isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            na, nb = _names(a), _names(b)
            gone, new = [x for x in na if x not in nb], [x for x in nb if x not in na]
            parts = (["without " + ", ".join(gone)] if gone else []) + (["with " + ", ".join(new)] if new else [])
            if b is None:
                parts = ["every one"]
            if parts:
                out.append(f"{f.name} " + "; ".join(parts))
    return out


def fill_description(text: str, *, variant: Mapping[str, str], baseline: Mapping[str, str], path: Any) -> str:
    """`text` with its ``{baseline.<key>}`` / ``{variant.<key>}`` placeholders filled; an
    unknown key is refused naming the file and the valid keys."""
    def sub(m: re.Match) -> str:
        values = baseline if m.group(1) == "baseline" else variant
        if m.group(2) not in values:
            from offshoring.spec import SpecError

            raise SpecError(f"{path}: key 'description': unknown placeholder {m.group(0)}; valid: "
                            + ", ".join("{" + m.group(1) + "." + k + "}" for k in sorted(values)) + ".")
        return values[m.group(2)]

    return _PLACEHOLDER.sub(sub, text)


# --------------------------------------------------------------------------- loading


def variant_files(defaults: Path, user_dir: Path | None) -> dict[str, dict[str, Path]]:
    """table -> name -> file; a user's file replaces the shipped one of the same name."""
    out: dict[str, dict[str, Path]] = {}
    for table in TABLES:
        found: dict[str, Path] = {}
        for root in (defaults, user_dir):
            folder = (root / VARIANTS_DIR / table) if root is not None else None
            if folder is None or not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.yaml")):
                found[path.stem] = path
        out[table] = found
    if user_dir is not None:
        extra = user_dir / VARIANTS_DIR
        if extra.is_dir():
            strays = [p for p in extra.iterdir() if p.is_dir() and p.name not in TABLES]
            if strays:
                from offshoring.spec import SpecError

                raise SpecError(f"{strays[0]}: variants go under {extra}/table2 or {extra}/table3 "
                                f"(one YAML file per variant); '{strays[0].name}' is not a table with variants.")
    return out


def load_variants(defaults: Path, user_dir: Path | None, *, model_layers: Mapping[str, Mapping[str, Any]],
                  thresholds: Any, panel: Any) -> dict[str, tuple[Variant, ...]]:
    """Every enabled variant of every table, checked and resolved (baseline first, then by
    ``order`` and name). `model_layers`: the baseline model specifications as merged
    mappings (``probit``, ``cox``), which a variant's ``model`` keys replace key by key."""
    from offshoring.econometrics.model_specs import COX_KEYS, DYNAMIC_KEYS, load_cox_spec, load_dynamic_spec
    from offshoring.spec import PanelSpec, SpecError, Thresholds, _check_keys, _library, _merge, \
        _read_yaml, _validate

    parsers = {"probit": (DYNAMIC_KEYS, load_dynamic_spec), "cox": (COX_KEYS, load_cox_spec)}
    out: dict[str, tuple[Variant, ...]] = {}
    for table, files in variant_files(defaults, user_dir).items():
        part = TABLES[table]["part"]
        keys, parse = parsers[part]
        base_words = setting_words(parse(dict(model_layers[part])), thresholds)
        variants = []
        for name, path in files.items():
            if not _NAME.match(name):
                raise SpecError(f"{path}: a variant's file name is its name: lower-case letters, digits "
                                f"and underscores, starting with a letter (rename the file).")
            data = _read_yaml(path)
            vf = _validate(VariantFile, data, [path])
            if not vf.enabled:
                continue
            estimator = vf.estimator or TABLES[table]["estimators"][0]
            if estimator not in TABLES[table]["estimators"]:
                raise SpecError(f"{path}: key 'estimator': {table} is fitted with "
                                f"{' or '.join(TABLES[table]['estimators'])}, not {estimator}.")
            _check_keys(vf.model, keys, [path], prefix="model.")
            model_spec = _library(parse, {**model_layers[part], **vf.model}, [path])
            th = _validate(Thresholds, _merge(thresholds.model_dump(), vf.thresholds), [path]) \
                if vf.thresholds else thresholds
            pn = _validate(PanelSpec, _merge(panel.model_dump(), vf.panel), [path]) \
                if vf.panel else panel
            if vf.district_list is not None:
                rel = Path(vf.district_list)
                if rel.is_absolute() or ".." in rel.parts:
                    raise SpecError(f"{path}: key 'district_list' is a path inside the raw folder "
                                    f"(e.g. reference/istat_districts.csv), not {vf.district_list!r}.")
            overlay = {k: v for k, v in (("model", vf.model), ("thresholds", vf.thresholds),
                                         ("panel", vf.panel), ("district_list", vf.district_list),
                                         ("estimator", vf.estimator)) if v}
            description = fill_description(vf.description.strip(), variant=setting_words(model_spec, th),
                                           baseline=base_words, path=path)
            variants.append(Variant(table=table, name=name, description=description,
                                    order=vf.order, estimator=estimator, model_spec=model_spec,
                                    thresholds=th, panel=pn, district_list=vf.district_list,
                                    overlay=overlay, file=str(path)))
        for main in {v.main_fit for v in variants if v.main_fit}:
            same = [v for v in variants if v.main_fit == main]
            if len(same) > 1:
                what = "the baseline" if same[0].is_baseline else f"the pipeline's own fit {main}"
                raise SpecError(f"{table}: more than one variant is {what} ({', '.join(v.file for v in same)}); "
                                f"keep one, or give the others a difference from it.")
        variants.sort(key=lambda v: (not v.is_baseline, v.order, v.name))
        out[table] = tuple(variants)
    return out


# --------------------------------------------------------------------------- fingerprints


def table_hash(con: Any, table: str) -> str:
    """Content hash of a table, independent of row order: row count and the sum of row hashes."""
    n, s = con.execute(f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {table} t").fetchall()[0]
    return f"{int(n)}:{int(s)}"


def _file_sha(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def variant_inputs(con: Any, variant: Variant) -> list[str]:
    """The warehouse tables a variant's fit is made from."""
    if not variant.rebuilds_panel:
        return ["panel.model_panel" if variant.table == "table2" else "panel.spell_years"]
    tables = [f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'raw' AND table_name <> 'load_log' ORDER BY 1, 2").fetchall()]
    return tables + [f"geography.{t}" for t in _GEOGRAPHY_INPUTS if _exists(con, "geography", t)]


_SOURCE_FINGERPRINT: str | None = None


def source_fingerprint() -> str:
    """SHA-256 of the package's Python and SQL sources (computed once per process): a fit
    made by other code is never taken for this code's, committed or not."""
    global _SOURCE_FINGERPRINT
    if _SOURCE_FINGERPRINT is None:
        from offshoring import settings

        h = hashlib.sha256()
        roots = [Path(__file__).resolve().parent, settings.shipped_dir("sql")]
        for root in roots:
            for path in sorted(list(root.rglob("*.py")) + list(root.rglob("*.sql"))):
                if "__pycache__" in path.parts:
                    continue
                h.update(path.relative_to(root).as_posix().encode())
                h.update(path.read_bytes())
        _SOURCE_FINGERPRINT = h.hexdigest()
    return _SOURCE_FINGERPRINT


class Fingerprint(str):
    """The SHA-256 of what a fit is made from; `parts` holds the hash of each part (code
    version, sources, specification, each input table, ...), so a refit can say why."""

    parts: dict[str, str]


def _short(x: Any) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True, default=str).encode()).hexdigest()[:16]


def table_part(con: Any, table: str) -> str:
    """The fingerprint part of `table` as `inputs_fingerprint` records it (``table <name>``):
    compared with a stored fit's parts to tell whether the table changed since the fit."""
    return _short(table_hash(con, table))


def inputs_fingerprint(con: Any, spec_json: str, tables: list[str], **extra: Any) -> Fingerprint:
    """What a fit is made from, hashed: the code (version and sources), the effective
    specification, the content of its input tables and anything in `extra`."""
    from offshoring.version import code_version

    parts = {"code_version": code_version(), "sources": source_fingerprint(), "spec": spec_json,
             **{f"table {t}": table_hash(con, t) for t in tables}, **extra}
    fp = Fingerprint(hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest())
    fp.parts = {k: _short(v) for k, v in parts.items()}
    return fp


def changed_parts(con: Any, model: str, fp: Fingerprint) -> list[str]:
    """The parts of `fp` that differ from the stored fit's (all of them when none is stored)."""
    try:
        row = con.execute("SELECT text FROM models.fit_stats WHERE model = ? AND stat = 'input_fingerprint_parts'",
                          [model]).fetchall()
    except Exception:  # noqa: BLE001 - nothing stored yet
        row = []
    old = json.loads(row[0][0]) if row and row[0][0] else {}
    return sorted(k for k in set(fp.parts) | set(old) if fp.parts.get(k) != old.get(k))


def fingerprint(con: Any, variant: Variant, raw_dir: Path, origin: str) -> Fingerprint:
    """What the variant's fit is made from, hashed: a new fit is needed when it changes."""
    return inputs_fingerprint(
        con, variant.spec_json(), variant_inputs(con, variant), origin=origin,
        district_list=_file_sha(raw_dir / variant.district_list) if variant.district_list else None)


def stored_fingerprint(con: Any, model: str) -> str | None:
    try:
        row = con.execute("SELECT text FROM models.fit_stats WHERE model = ? AND stat = 'input_fingerprint'",
                          [model]).fetchall()
    except Exception:  # noqa: BLE001 - no models schema yet: nothing stored
        return None
    return row[0][0] if row else None


# --------------------------------------------------------------------------- a variant's own panel

#: the geography tables the panel is built from (province_spillovers is rebuilt)
_GEOGRAPHY_INPUTS = ("municipality_xwalk", "province_prefix", "llma_districts")


def _exists(con: Any, schema: str, table: str, catalog: str | None = None) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = coalesce(?, current_database()) "
        "AND schema_name = ? AND table_name = ?", [catalog, schema, table]).fetchall()[0][0])


class VariantNotFitted(Exception):
    """The variant cannot be fitted on what is there (e.g. its district list is absent)."""


@contextmanager
def scratch_panel(con: Any, variant: Variant, raw_dir: Path, district_settings: Any,
                  scratch_dir: Path) -> Iterator[str]:
    """Build the variant's panel in a scratch database and yield its catalog name.

    The scratch database's raw and geography inputs are views of the warehouse's tables;
    the panel is built by the baseline's library functions with the variant's thresholds,
    panel settings and district flags. The warehouse's own tables are not written: the
    connection is switched to the scratch catalog, whose schemas hold every name the
    panel SQL writes. The scratch file is deleted afterwards.
    """
    from offshoring import panel as panel_lib
    from offshoring.sqlfiles import run_sql

    home = con.execute("SELECT current_database()").fetchall()[0][0]
    name = f"variant_{uuid.uuid4().hex[:10]}"
    scratch_dir.mkdir(parents=True, exist_ok=True)
    path = scratch_dir / f"{name}.duckdb"
    con.execute(f"ATTACH '{path.as_posix()}' AS {name}")
    try:
        con.execute(f"USE {name}")
        for schema in ("raw", "geography", "panel", "meta"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for (table,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'raw'",
                [home]).fetchall():
            con.execute(f'CREATE VIEW raw."{table}" AS SELECT * FROM "{home}".raw."{table}"')
        for table in _GEOGRAPHY_INPUTS:
            if table == "llma_districts" and variant.district_list:
                continue
            if _exists(con, "geography", table, home):
                con.execute(f'CREATE VIEW geography."{table}" AS SELECT * FROM "{home}".geography."{table}"')
        if variant.district_list:
            _district_flags_from_list(con, raw_dir / variant.district_list, district_settings)
        panel_lib.build_firm_years(con, variant.thresholds)
        panel_lib.build_aida_offshoring(con, variant.thresholds)
        run_sql(con, "geography_province_spillovers")
        panel_lib.build_model_panel(con, leave_one_out=variant.panel.leave_one_out)
        if variant.table == "table3":
            panel_lib.build_spells(con)
            panel_lib.build_spell_years(con)
        yield name
    finally:
        con.execute(f'USE "{home}"')
        con.execute(f"DETACH {name}")
        for p in (path, path.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)


def _district_flags_from_list(con: Any, path: Path, district_settings: Any) -> None:
    """geography.llma_districts of the scratch database from a list of district LLMAs, by the
    same procedure the baseline runs with a user's list (its flags replace the computed ones)."""
    from offshoring.districts import read_override_list, run_district_procedure

    if not path.is_file():
        raise VariantNotFitted(f"no district list at {path}")
    codes = read_override_list(path)
    if not codes:
        raise VariantNotFitted(f"the district list {path} holds no LLMA code")
    census = con.sql("SELECT * FROM raw.census_employment").pl()
    result = run_district_procedure(census, district_settings, codes)
    con.register("_variant_districts", result.table.to_arrow())
    try:
        con.execute("CREATE TABLE geography.llma_districts AS SELECT * FROM _variant_districts")
    finally:
        con.unregister("_variant_districts")


# --------------------------------------------------------------------------- fitting


@dataclass
class VariantFit:
    results: Any
    stats: dict[str, Any]


def fit_variant(con: Any, variant: Variant, raw_dir: Path, district_settings: Any,
                scratch_dir: Path) -> VariantFit:
    """Fit the variant on its panel (the baseline's, or its own built in a scratch database).
    Raises `VariantNotFitted` when its inputs are not there (e.g. no district list)."""
    if variant.district_list and not (raw_dir / variant.district_list).is_file():
        raise VariantNotFitted(f"no district list at {raw_dir / variant.district_list}")
    if variant.rebuilds_panel:
        with scratch_panel(con, variant, raw_dir, district_settings, scratch_dir):
            return _fit_on(con, variant)
    return _fit_on(con, variant)


def _fit_on(con: Any, variant: Variant) -> VariantFit:
    import time

    from offshoring.econometrics.model_specs import missing_column_sentence

    table = "panel.model_panel" if variant.table == "table2" else "panel.spell_years"
    problem = missing_column_sentence([r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()],
                                      variant.model_spec, table, str(variant.file))
    if problem:
        raise VariantNotFitted(problem)

    t0 = time.perf_counter()
    if variant.table == "table2":
        from offshoring.econometrics.dynamic import build_dynamic_sample

        sp = variant.model_spec
        cols = sorted({sp.group, sp.time, sp.outcome, *sp.lagged, *sp.contemporaneous,
                       *sp.counts, *sp.dummies})
        query = f"SELECT {', '.join(cols)} FROM panel.model_panel"
        sample, res, dropped = _fit_dropping_perfect_dummies(lambda: con.sql(query).pl(), sp)
        years = sample.description["estimation_years"]
        stats = {"llf": float(res.llf), "sigma_u": float(res.sigma_u), "rho": float(res.rho),
                 "sample_first_year": int(min(years)), "sample_last_year": int(max(years)),
                 "link": str(sp.link), "quad_points": int(getattr(res, "quad_points", sp.quad_points)),
                 "adaptive": int(bool(getattr(res, "adaptive", sp.adaptive))),
                 "cov_type": str(getattr(res, "cov_type", sp.cov_type))}
        init = sample.description.get("initial_years") or {}
        if init:
            stats["sample_initial_year"] = int(min(init))
        if dropped:
            stats["dropped_dummies"] = "; ".join(dropped)
    else:
        from offshoring.econometrics.cox import fit_cox_table3
        from offshoring.econometrics.grouped_ph import fit_grouped_ph_table3, region_spell_risk_rows

        sp = variant.model_spec
        spells = region_spell_risk_rows(con.sql("SELECT * FROM panel.spell_years").pl(), sp.firm_exit)
        fit = fit_cox_table3 if variant.estimator == "cox" else fit_grouped_ph_table3
        res = fit(spells, sp)
        del spells
        years = res.sample.data["year"]
        stats = {"llf": float(res.llf), "sample_first_year": int(years.min()),
                 "sample_last_year": int(years.max()), "cov_type": str(getattr(res, "cov_type", sp.cov_type))}
        if getattr(res, "cluster_correction", None) is not None:
            stats["cluster_correction"] = int(bool(res.cluster_correction))
        if variant.estimator == "cox":
            stats["ties"] = str(sp.ties)
        if getattr(res, "n_events", None) is not None:
            stats["n_events"] = int(res.n_events)
    stats["fit_seconds"] = time.perf_counter() - t0
    return VariantFit(res, stats)


_PERFECT = re.compile(r"^(\S+) != 0 predicts (success|failure) perfectly \((\d+) observations\)")


def _fit_dropping_perfect_dummies(read_panel: Any, spec: Any) -> tuple[Any, Any, list[str]]:
    """Fit; a dummy level that predicts the outcome perfectly is dropped with its
    observations and the fit repeated, as Stata's probit does ("note: x != 0 predicts
    failure perfectly; x dropped and n obs not used"). Only the specification's dummy
    levels are dropped this way: any other separation is refused as before. Returns
    (sample, results, what was dropped).

    ``read_panel()`` reads the panel afresh for each attempt, so no copy of it is held
    while the model is fitted (the estimation sample is all the fit needs)."""
    import dataclasses

    import polars as pl

    from offshoring.econometrics.dynamic import build_dynamic_sample
    from offshoring.econometrics.errors import PerfectPredictionError

    levels = {name: (src, level) for src, (_base, lv) in spec.dummies.items() for level, name in lv.items()}
    dropped: list[str] = []
    removed: list[tuple[str, Any]] = []  # (column, level) whose observations are dropped
    for _ in range(len(levels) + 1):
        panel = read_panel()
        for src, level in removed:
            panel = panel.filter(pl.col(src) != level)
        sample = build_dynamic_sample(panel, spec)
        del panel
        try:
            return sample, sample.fit(), dropped
        except PerfectPredictionError as exc:
            m = _PERFECT.match(str(exc))
            if not m or m.group(1) not in levels:
                raise
            src, level = levels.pop(m.group(1))
            removed.append((src, level))
            dummies = {s: (b, {lv: n for lv, n in lvls.items() if not (s == src and lv == level)})
                       for s, (b, lvls) in spec.dummies.items()}
            spec = dataclasses.replace(spec, dummies=dummies)
            dropped.append(f"{m.group(1)} predicts {m.group(2)} perfectly: dropped with its "
                           f"{m.group(3)} observations")
    raise RuntimeError("unreachable: every dummy level was dropped")
