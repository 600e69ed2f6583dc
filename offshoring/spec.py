"""One typed study specification: every setting of the study, read once and checked.

The YAML files under the package's ``config/`` hold every default (and are the only
place a default is written); a user's folder (``OFFSHORING_CONFIG_DIR``) may hold a
copy of any of them, whole or in part: its keys replace the defaults' keys (mappings
are merged key by key, lists replaced whole; in the model specifications and the
district settings each top-level key is replaced whole, so a user's `dummies:` is the
whole set). The merged result is checked before
anything runs:

* an unknown key is refused, naming the file, the key and the nearest valid key
  (a misspelt ``turnover_ceilling`` must not silently leave the default in force);
* types and ranges are checked, naming the file and the key.

The `StudySpec` is then handed to the assets (through a Dagster resource) and from
them to library functions as arguments: no library function opens a settings file.
`StudySpec.as_dict` and `StudySpec.sha256` are what fits, metadata and provenance
record, so an output can always say which specification made it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from offshoring import settings

#: the files of the specification, by part (the model specs are named in models.yaml)
PART_FILES = {
    "thresholds": "thresholds.yaml",
    "panel": "panel.yaml",
    "districts": "districts.yaml",
    "models": "models.yaml",
    "reports": "reports.yaml",
    "alerts": "alerts.yaml",
    "schedule": "schedule.yaml",
}


class SpecError(ValueError):
    """The specification cannot be used as written: says file, key and what to do."""


# --------------------------------------------------------------------------- typed parts


class _Strict(BaseModel):
    # strict: a YAML `true` is not the number 1, a quoted "50" is not 50, "no" is not false;
    # each is refused naming the file and the key (the README: a quoted 'false' is not false)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TurnoverCeiling(_Strict):
    default: float = Field(gt=0)
    by_year: dict[int, float]

    @field_validator("by_year", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        # `by_year: null` in an overlay (a variant) replaces the per-year ceilings by none: the
        # overlay merges key by key, and an empty mapping would keep the baseline's years
        return {} if v is None else v

    @field_validator("by_year")
    @classmethod
    def _positive(cls, v: dict[int, float]) -> dict[int, float]:
        bad = [y for y, x in v.items() if not x > 0]
        if bad:
            raise ValueError(f"ceilings must be positive (years {bad})")
        return v


class DeliveryGateSpec(_Strict):
    max_shrink_share: float = Field(ge=0, lt=1)
    min_share_of_neighbours: float = Field(ge=0, le=1)
    accept_smaller: list[int]


class PlausibilitySpec(_Strict):
    """Bounds of the survey's plausibility checks (`offshoring.plausibility`): a year's medians
    within `max_median_factor` of the other years'; its share of returns above the turnover
    ceiling at most `max_share_above_ceiling` in any case, and at most the other years' largest
    share plus `ceiling_share_margin`."""

    max_median_factor: float = Field(gt=1)
    ceiling_share_margin: float = Field(ge=0, le=1)
    max_share_above_ceiling: float = Field(gt=0, le=1)


class Thresholds(_Strict):
    turnover_ceiling: TurnoverCeiling
    offshoring_ownership_pct: float = Field(ge=0, lt=100)
    delivery_gate: DeliveryGateSpec
    plausibility: PlausibilitySpec

    def ceiling(self, year: int) -> float:
        """The survey's turnover ceiling in `year`, EUR."""
        return float(self.turnover_ceiling.by_year.get(int(year), self.turnover_ceiling.default))

    def ceilings(self, years) -> dict[int, float]:
        return {int(y): self.ceiling(int(y)) for y in years}


class PanelSpec(_Strict):
    leave_one_out: bool


class ProbitExtras(_Strict):
    spec: str
    quadrature_check: list[int]
    partial_effects: list[str]

    @field_validator("quadrature_check")
    @classmethod
    def _points(cls, v: list[int]) -> list[int]:
        if any(k < 2 or k > 100 for k in v):
            raise ValueError("quadrature points must be between 2 and 100")
        return v


class CoxExtras(_Strict):
    spec: str


class ModelsSpec(_Strict):
    probit: ProbitExtras
    cox: CoxExtras


class SdcSpec(_Strict):
    min_firms: int = Field(ge=1)
    dominance_share: float = Field(gt=0, le=1)
    marker: str = Field(min_length=1)


class Table1Spec(_Strict):
    start_year: int = Field(ge=1990, le=2100)
    end_year: int | None = Field(ge=1990, le=2100)

    @model_validator(mode="after")
    def _in_order(self) -> "Table1Spec":
        if self.end_year is not None and self.end_year < self.start_year:
            raise ValueError(f"end_year {self.end_year} is before start_year {self.start_year}")
        return self


class Figure1Spec(_Strict):
    year: int = Field(ge=1990, le=2100)


class Figure2Spec(_Strict):
    year: int = Field(ge=1990, le=2100)
    geo_year: int
    simplify_tolerance: float = Field(ge=0)
    classes: list[int]


class FormatSpec(_Strict):
    digits: int = Field(ge=0, le=8)


class ReportsSpec(_Strict):
    sdc: SdcSpec
    table1: Table1Spec
    figure1: Figure1Spec
    figure2: Figure2Spec
    format: FormatSpec


class EmailSpec(_Strict):
    enabled: bool
    host: str
    port: int = Field(ge=1, le=65535)
    starttls: bool
    sender: str
    recipients: list[str]
    username: str | None
    password_env: str | None


class SlackSpec(_Strict):
    enabled: bool
    webhook_url_env: str | None
    webhook_url: str | None


class AlertsSpec(_Strict):
    enabled: bool
    ui_base_url: str
    email: EmailSpec
    slack: SlackSpec
    sent_log: str | None


class ScheduleSpec(_Strict):
    yearly_refresh_cron: str

    @field_validator("yearly_refresh_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        fields = v.split()
        if len(fields) != 5:
            raise ValueError("a cron expression has five fields (minute hour day month weekday)")
        for text, (name, low, high) in zip(fields, _CRON_FIELDS):
            problem = _cron_field_problem(text, low, high)
            if problem:
                raise ValueError(f"the {name} field '{text}' of '{v}' {problem}")
        day, month = fields[2], fields[3].lower()
        month = str(_CRON_NAMES.get(month, month))
        if day.isdigit() and month.isdigit() and int(day) > (29, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                                                               31)[int(month)]:
            raise ValueError(f"'{v}' never runs: month {month} has no day {day}")
        return v


#: the five fields of a cron expression: name, lowest and highest value
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_CRON_NAMES = {**{m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                               "oct", "nov", "dec"), 1)},
               **{d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}}


def _cron_field_problem(text: str, low: int, high: int) -> str | None:
    """What is wrong with one cron field (`*`, `5`, `1-5`, `*/15`, `1,15`, `jan`, `mon-fri`),
    or None. A schedule refused here would otherwise fail the definitions at run time with an
    error naming no file or key."""
    def value(t: str) -> int:
        t = t.lower()
        if t in _CRON_NAMES:
            return _CRON_NAMES[t]
        if not t.isdigit():
            raise ValueError(t)
        return int(t)

    for part in text.split(","):
        rng, _, step = part.partition("/")
        try:
            if step and (not step.isdigit() or int(step) < 1):
                return f"has the step '{step}': a step is a whole number from 1"
            if rng == "*":
                continue
            a, _, b = rng.partition("-")
            lo = value(a)
            hi = value(b) if b else lo
        except ValueError as bad:
            return f"has '{bad}', which is not a number or a month or weekday name"
        if not (low <= lo <= high and low <= hi <= high):
            return f"is outside {low}-{high}"
        if hi < lo:
            return f"has the range {rng}, whose end is before its start"
    return None


_MODELS: dict[str, type[_Strict]] = {
    "thresholds": Thresholds, "panel": PanelSpec, "models": ModelsSpec, "reports": ReportsSpec,
    "alerts": AlertsSpec, "schedule": ScheduleSpec,
}


# --------------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class StudySpec:
    thresholds: Thresholds
    panel: PanelSpec
    districts: Any  # offshoring.districts.DistrictSettings
    models: ModelsSpec
    probit: Any  # offshoring.econometrics.model_specs.DynamicSpec
    cox: Any  # offshoring.econometrics.model_specs.CoxSpec
    reports: ReportsSpec
    alerts: AlertsSpec
    schedule: ScheduleSpec
    files: Mapping[str, str]  # part -> the file(s) it was read from
    # table -> its named variants (offshoring.variants.Variant), the baseline first
    variants: Mapping[str, tuple] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The effective specification, JSON-able (what provenance records whole)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "variants":
                out[f.name] = {t: [v.as_dict() for v in vs] for t, vs in value.items()}
            elif isinstance(value, BaseModel):
                out[f.name] = value.model_dump(mode="json")
            elif dataclasses.is_dataclass(value):
                out[f.name] = _jsonable(dataclasses.asdict(value))
            else:
                out[f.name] = _jsonable(value)
        return out

    @property
    def sha256(self) -> str:
        """Hash of the effective specification (not of the files: comments do not count)."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def part_sha256(self) -> dict[str, str]:
        """Hash of each part of `as_dict` (``"thresholds"``) and, for a part that is a mapping, of
        each of its top-level keys (``"thresholds.delivery_gate"``): what a run records so that
        the next one can tell which parts of the specification changed."""
        def sha(value: Any) -> str:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
            return hashlib.sha256(text.encode()).hexdigest()

        out: dict[str, str] = {}
        for part, value in self.as_dict().items():
            out[part] = sha(value)
            if isinstance(value, Mapping):
                out.update({f"{part}.{key}": sha(sub) for key, sub in value.items()})
        return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def defaults_dir() -> Path:
    """The folder of the default YAML files shipped with the project."""
    return settings.defaults_config_dir()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text; save it as UTF-8.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{path} is not valid YAML: {getattr(exc, 'problem', None) or 'syntax error'}"
                        f"{where}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of keys at the top level, found a {type(data).__name__}.")
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _layers(name: str, user_dir: Path | None, deep: bool = True) -> tuple[dict[str, Any], list[Path]]:
    """The default file with the user's copy over it: key by key (`deep`), or, for a model
    specification, top-level key by top-level key (a user's `dummies:` replaces the
    default's, it does not add to them)."""
    default = defaults_dir() / name
    data = _read_yaml(default) if default.exists() else {}
    used = [default] if default.exists() else []
    if user_dir is not None and (user_dir / name).exists() and (user_dir / name).resolve() != default.resolve():
        user = _read_yaml(user_dir / name)
        data = _merge(data, user) if deep else {**data, **user}
        used.append(user_dir / name)
    if not used:
        raise SpecError(f"{name} not found in {defaults_dir()}" + (f" nor in {user_dir}" if user_dir else ""))
    return data, used


def _nearest(key: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(sorted(valid))}"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model holding the key at `loc` (for the list of valid keys)."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _validate(model: type[_Strict], data: dict[str, Any], files: list[Path]) -> _Strict:
    where = " (over " + str(files[0]) + ")" if len(files) > 1 else ""
    shown = files[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc)
            if err["type"] == "extra_forbidden":
                holder = _model_at(model, loc)
                valid = list(holder.model_fields) if holder else []
                lines.append(f"unknown key '{key}'{_nearest(str(loc[-1]), valid)}")
            elif err["type"] == "missing":
                lines.append(f"key '{key}' is missing")
            else:
                lines.append(f"key '{key}': {err['msg']}{_text_number_hint(err)}")
        raise SpecError(f"{shown}{where}: " + "; ".join(lines)) from None


def _text_number_hint(err: Mapping[str, Any]) -> str:
    """YAML reads 7.5e6 (no sign in the exponent, or no dot) and a quoted "50" as text: a
    number was meant, so the sentence says how to write it as one."""
    value = err.get("input")
    if not isinstance(value, str) or err["type"] not in ("float_type", "int_type"):
        return ""
    try:
        number = float(value.replace("_", ""))
    except ValueError:
        return ""
    full = str(int(number)) if number.is_integer() else repr(number)
    return f" (YAML read {value!r} as text: write the number in full, without quotes: {full})"


def _check_keys(data: Mapping[str, Any], valid: set[str] | list[str], files: list[Path], prefix: str = "") -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        parts = [f"unknown key '{prefix}{k}'{_nearest(str(k), list(valid))}" for k in unknown]
        raise SpecError(f"{files[-1]}: " + "; ".join(parts))


def _library(parse, data: Mapping[str, Any], files: list[Path]):
    """A library spec parser, its ValueError turned into a SpecError naming the file."""
    try:
        return parse(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise SpecError(f"{files[-1]}: {exc}.") from None


def load_study_spec(config_dir: str | Path | None = None) -> StudySpec:
    """Read, merge and check every part. `config_dir`: the user's folder (None: defaults only)."""
    from offshoring.districts import DistrictSettings
    from offshoring.econometrics.model_specs import COX_KEYS, DYNAMIC_KEYS, load_cox_spec, load_dynamic_spec

    user = Path(config_dir) if config_dir is not None else None
    if user is not None and not user.is_dir():
        raise SpecError(f"The config folder {user} ({settings.ENV_CONFIG_DIR}) does not exist.")
    parts: dict[str, Any] = {}
    files: dict[str, str] = {}
    for part, name in PART_FILES.items():
        data, used = _layers(name, user, deep=part != "districts")
        files[part] = " + ".join(str(p) for p in used)
        if part == "districts":
            _check_keys(data, {f.name for f in dataclasses.fields(DistrictSettings)}, used)
            parts[part] = _library(DistrictSettings.from_dict, data, used)
        else:
            parts[part] = _validate(_MODELS[part], data, used)
    models: ModelsSpec = parts["models"]
    model_layers: dict[str, dict[str, Any]] = {}
    for part, name, keys, parse in (("probit", models.probit.spec, DYNAMIC_KEYS, load_dynamic_spec),
                                    ("cox", models.cox.spec, COX_KEYS, load_cox_spec)):
        data, used = _layers(name, user, deep=False)
        files[part] = " + ".join(str(p) for p in used)
        _check_keys(data, keys, used)
        parts[part] = _library(parse, data, used)
        model_layers[part] = data
    missing = [t for t in models.probit.partial_effects if t not in ("y_lag", "y_initial")
               and t not in parts["probit"].exog_names]
    if missing:
        raise SpecError(f"{files['models']}: key 'probit.partial_effects' names terms the probit spec does "
                        f"not have: {missing}.")
    if user is not None:
        _check_settings_names(user, {*PART_FILES.values(), models.probit.spec, models.cox.spec})
    from offshoring.variants import load_variants

    parts["variants"] = load_variants(defaults_dir(), user, model_layers=model_layers,
                                      thresholds=parts["thresholds"], panel=parts["panel"])
    return StudySpec(files=files, **parts)


#: extensions of files that look like settings (a file of another kind, a README, is left alone)
_SETTINGS_SUFFIXES = (".yaml", ".yml", ".json", ".toml")


def _check_settings_names(user: Path, read: set[str]) -> None:
    """A settings-like file in the user's folder that no part reads (``thresholds.yml``, a
    ``Thresholds.yaml``, a misspelt name) would be ignored without a word and the defaults
    kept: refused, naming it and the file it was probably meant to be."""
    from offshoring.variants import TABLES, VARIANTS_DIR

    # the shipped example of the raw folder's column map is no settings file of this folder
    known = sorted((read | {p.name for p in defaults_dir().glob("*.yaml")}) - {"column_map.example.yaml"})
    stems = {Path(k).stem: k for k in known}
    for path in sorted(user.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            if path.name != VARIANTS_DIR and difflib.get_close_matches(path.name.lower(), [VARIANTS_DIR], cutoff=0.7):
                raise SpecError(f"{path} would be ignored: variants are read from {user / VARIANTS_DIR}/table2 "
                                f"and /table3; rename the folder {VARIANTS_DIR}.")
            continue
        if path.suffix.lower() not in _SETTINGS_SUFFIXES or path.name in known:
            continue
        if path.stem.lower() in ("column_map", "column-map", "columnmap"):
            hint = f"the column map belongs in the raw folder ({settings.ENV_RAW_DIR}), beside survey/ and aida/"
        else:
            near = difflib.get_close_matches(path.stem.lower(), list(stems), n=1, cutoff=0.75)
            hint = (f"rename it {stems[near[0]]}" if near
                    else f"the settings files are {', '.join(known)}")
        raise SpecError(f"{path} is not a settings file this project reads, so it would be ignored and "
                        f"the defaults kept: {hint} (or move it out of {user}).")
    for table in TABLES:
        folder = user / VARIANTS_DIR / table
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in _SETTINGS_SUFFIXES \
                    and path.suffix != ".yaml":
                raise SpecError(f"{path} would be ignored: a variant is read from a .yaml file; rename it "
                                f"{path.stem}.yaml.")
