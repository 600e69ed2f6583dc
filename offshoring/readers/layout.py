"""Where the contract's files are in a raw folder, and their hashes, without reading them.

Finding the deliveries (``survey/survey_<YYYY>.csv | .csv.gz | .parquet``, one per year; the
AIDA and reference files), refusing a folder by name (two deliveries for one input, a year
after this one, a link leading outside the raw folder) and hashing files: no polars, no
pandera, so the command line's pre-flight and its no-op check import this module alone.
Reading and validating the files is the other reader modules' work; `survey`, `reference`
and `common` re-export what is here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from offshoring.contract import ContractError, Failure

SURVEY_FILE_RE = re.compile(r"^survey_(\d{4})\.(csv|csv\.gz|parquet)$", re.IGNORECASE)
MUNICIPALITY_OVERRIDES = ("municipalities.csv", "Elenco-comuni-italiani.csv")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inside_folder(path: str | Path, folder: str | Path) -> Path:
    """`path` itself, once checked to lie inside `folder` with every link followed.

    Raw files are read only from inside the raw folder: a delivery that is a
    link to somewhere else (another project's data, a system file) is refused,
    not followed, so that what a load reads is what the raw folder holds. Links
    that stay inside the folder are fine. Raises `ContractError` naming the file.
    """
    p = Path(path)
    root = Path(folder)
    try:
        target = p.resolve()
        inside = target.is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a loop of links
        inside = False
    if not inside:
        raise ContractError(p, [Failure(
            "outside_raw_folder", None,
            detail=f"{p.name} leads outside {root}; links pointing outside the raw folder are not followed",
        )])
    return p


# --- survey deliveries ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlainFailure(Failure):
    """A refusal of a folder or a setting said in one sentence (`detail`), not a row rule."""

    def describe(self, row_label: str = "row") -> str:
        return f"[{self.rule}] {self.detail}"


#: extensions of data files: in ``survey/``, a file with one of them whose name holds ``survey``
#: and a year is taken for a delivery (or a copy of one)
DATA_EXTENSIONS = (".csv", ".tsv", ".gz", ".zip", ".bz2", ".xz", ".7z", ".parquet", ".xlsx", ".xls",
                   ".xlsm", ".xlsb", ".ods", ".dta", ".sav", ".sas7bdat", ".feather", ".arrow")
#: workbooks: the advice is to save them as CSV
WORKBOOK_EXTENSIONS = (".xlsx", ".xls", ".xlsm", ".xlsb", ".ods")
#: last suffixes of a checksum, a signature or a backup beside a delivery (``survey_2010.csv.sha256``,
#: ``survey_2010.csv.bak``, an editor's ``survey_2010.csv~``): no delivery, left alone
SIDE_FILE_SUFFIXES = (".sha256", ".sha512", ".sha1", ".md5", ".asc", ".sig", ".bak", ".orig", ".old", "~")
#: a name starting with ``survey`` and a 4-digit year, separated by ``_``, ``-``, a space or nothing
_SURVEY_YEAR_PREFIX = re.compile(r"^survey[ _-]?(\d{4})(?!\d)", re.IGNORECASE)
_A_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_YEAR_FOLDER = re.compile(r"^\d{4}$")
ACCEPTED_NAMES = "survey_<YYYY>.csv, survey_<YYYY>.csv.gz or survey_<YYYY>.parquet"


def survey_folder(raw_dir: str | Path) -> Path:
    """``<raw>/survey``: the contract's one place for the survey deliveries."""
    return Path(raw_dir) / "survey"


def current_year() -> int:
    """This calendar year (a function, for tests to move the clock)."""
    return dt.date.today().year


def _ignored(name: str) -> bool:
    """Entries no one delivers: hidden files (``.DS_Store``, macOS's ``._`` copies) and the
    lock files office programs leave beside an open workbook (``~$survey_2013.xlsx``)."""
    return name.startswith((".", "~$"))


def _side_file(name: str) -> bool:
    """A checksum, a signature or a backup (``survey_2010.csv.sha256``, ``.bak``): left alone."""
    return name.lower().endswith(SIDE_FILE_SUFFIXES)


def _year_in(name: str) -> str | None:
    m = _SURVEY_YEAR_PREFIX.match(name) or _A_YEAR.search(name)
    return m.group(1) if m else None


def looks_like_delivery(name: str) -> bool:
    """Whether a file of ``survey/`` named `name` reads as a survey delivery the run would not
    read: not a delivery name (``survey_<YYYY>.csv | .csv.gz | .parquet``, any case), nor hidden,
    an office lock file, a checksum, a signature or a backup; and either its name starts with
    ``survey`` and a 4-digit year (``survey_2013.xlsx``, ``Survey 2013.csv``, ``survey2013.txt``,
    ``survey_2012_old.csv``) or it has a data file's extension and names ``survey`` and a year
    anywhere (``survey_2010 - Copy.csv``, ``returns_survey_2013.zip``). Anything else (a README,
    a codebook, ``variable_list.csv``) is no delivery."""
    if _ignored(name) or _side_file(name) or SURVEY_FILE_RE.match(name):
        return False
    if _SURVEY_YEAR_PREFIX.match(name):
        return True
    lower = name.lower()
    return lower.endswith(DATA_EXTENSIONS) and "survey" in lower and bool(_A_YEAR.search(name))


def _delivery_folder_name(name: str) -> bool:
    """A subfolder of ``survey/`` named for a year (``2013``) or like a delivery (``survey_2014.csv``,
    ``survey_2014``)."""
    return bool(_YEAR_FOLDER.match(name) or SURVEY_FILE_RE.match(name) or _SURVEY_YEAR_PREFIX.match(name))


def _advice(name: str, delivered: dict[str, str]) -> str:
    """What to do with a file of ``survey/`` that looks like a delivery, for its kind: a copy
    beside the year's delivery, a workbook, another name."""
    year = _year_in(name)
    if year in delivered:
        return (f"it reads as a copy of the {year} delivery beside {delivered[year]}, and which one counts "
                f"would be a guess: remove it, or rename it to {name}.bak to keep it as a backup")
    if name.lower().endswith(WORKBOOK_EXTENSIONS):
        y = year or "<YYYY>"
        return (f"a workbook is not read: save it as CSV (survey_{y}.csv) and move the workbook "
                f"out of the survey folder")
    y = year or "<YYYY>"
    return (f"if it is the {y} delivery, rename it to survey_{y}.csv (or .csv.gz, .parquet, as it is); "
            f"if it is not, move it out of the survey folder")


def _not_a_delivery(raw: Path, folder: Path) -> list[Failure]:
    """Entries that look like survey deliveries but that the run would not read; each would be
    silently left out, so each is refused instead, by name, with what to do for its kind.

    - At the top of the raw folder: a file named exactly as a delivery (``survey_<YYYY>.csv |
      .csv.gz | .parquet``, any case): move it into ``survey/``. With no ``survey/``, a folder
      called ``Survey`` or ``surveys``: rename it. Any other file there (a PDF, the provider's
      zip archive) is left alone.
    - In ``survey/``, a file `looks_like_delivery` says is one: its name starts with ``survey``
      and a 4-digit year but is not a delivery name, or it has a data extension and names
      ``survey`` and a year anywhere. A copy of a year that is delivered: remove or rename it;
      a workbook: save it as CSV; another name: rename it. Checksums, signatures and backups
      (last suffix ``.sha256``, ``.sha1``, ``.md5``, ``.asc``, ``.sig``, ``.bak``, ``.orig``,
      ``.old``), hidden files, office lock files and every other file (a README, a codebook,
      ``variable_list.csv``) are left alone. Names are matched in any case: ``SURVEY_2010.CSV``
      is the 2010 delivery, and read.
    - A subfolder of ``survey/`` named for a year (``survey/2013/``) or like a delivery
      (``survey/survey_2014.csv/``): its delivery belongs directly in ``survey/``. Other
      subfolders (``archive/``, ``old/``) are left alone and not searched.
    """
    out: list[Failure] = []
    where = f"directly in {folder}"
    if raw.is_dir():
        top = [p for p in sorted(raw.iterdir()) if not p.is_dir() and SURVEY_FILE_RE.match(p.name)]
        if top:
            names = _names(top) if len(top) > 1 else top[0].name
            out.append(PlainFailure("misplaced_delivery", None, detail=(
                f"{names} {'are' if len(top) > 1 else 'is'} at the top of the raw folder {raw}, where the run "
                f"does not read survey deliveries: move {'them' if len(top) > 1 else 'it'} into {folder}/ "
                f"(the data contract's survey/survey_<YYYY>.csv)")))
        if not folder.is_dir():
            other = [p for p in sorted(raw.iterdir()) if p.is_dir() and p.name.casefold() in ("survey", "surveys")]
            if other:
                out.append(PlainFailure("misplaced_delivery", None, detail=(
                    f"the survey folder is called {other[0].name}; the run reads {folder}: rename it to survey")))
    if not folder.is_dir():
        return out
    entries = [p for p in sorted(folder.iterdir()) if not _ignored(p.name)]
    delivered = {m.group(1): p.name for p in entries if not p.is_dir() and (m := SURVEY_FILE_RE.match(p.name))}
    for p in entries:
        rel = p.relative_to(folder).as_posix()
        if p.is_dir():
            if not _delivery_folder_name(p.name):
                continue  # archive/, old/: left alone, not searched
            if not _YEAR_FOLDER.match(p.name):
                out.append(PlainFailure("not_a_delivery", None, detail=(
                    f"survey/{rel} is a folder named like a delivery; a delivery is one file, "
                    f"{ACCEPTED_NAMES}, {where}: put the file there in its place")))
                continue
            inside = [] if p.is_symlink() else [  # a linked folder is not searched (it may lead anywhere)
                q for q in sorted(p.rglob("*")) if q.is_file()
                and not any(_ignored(part) for part in q.relative_to(p).parts) and not _side_file(q.name)
                and (SURVEY_FILE_RE.match(q.name) or looks_like_delivery(q.name)
                     or q.name.lower().endswith(DATA_EXTENSIONS))]
            if inside:
                out.append(PlainFailure("not_a_delivery", None, detail=(
                    f"survey/{inside[0].relative_to(folder).as_posix()}"
                    f"{f' (and {len(inside) - 1} more in survey/{rel})' if len(inside) > 1 else ''} "
                    f"is in a subfolder, where the run does not read deliveries: a delivery is "
                    f"{ACCEPTED_NAMES} {where}; move it there, or move survey/{rel} out of the survey folder")))
            else:
                out.append(PlainFailure("not_a_delivery", None, detail=(
                    f"survey/{rel} is a folder named for a year, where the run does not read deliveries: "
                    f"a delivery is {ACCEPTED_NAMES} {where}; move survey/{rel} out of the survey folder")))
            continue
        if looks_like_delivery(p.name):
            out.append(PlainFailure("not_a_delivery", None, detail=(
                f"survey/{rel} looks like a delivery, but the run reads only {ACCEPTED_NAMES} {where}: "
                f"{_advice(p.name, delivered)}")))
    return out


def discover_survey_files(raw_dir: str | Path, this_year: int | None = None) -> dict[int, Path]:
    """Year -> delivery file, from the names ``<raw>/survey/survey_<YYYY>.(csv|csv.gz|parquet)``.

    `raw_dir` is the raw folder. Refused with a `ContractError` naming the entry: two
    files for one year (which one counts would be a guess), a year after this one (a
    fiscal year cannot be in the future: a typo in the name), a file that is a link
    leading outside `raw_dir` (files are read only inside the raw folder), and anything
    that looks like a survey delivery but would not be read (`_not_a_delivery` says
    which: a delivery at the top of the raw folder, a file of ``survey/`` named
    ``survey`` and a year otherwise than the contract's names, a copy of a delivery, a
    folder named for a year or like a delivery). Hidden files, office lock files,
    checksums and backups, other subfolders (``archive/``) and every other file (a
    README, notes, a codebook, a PDF, the provider's zip at the top) are left alone.
    Names are matched in any case. `this_year`: the current year (default:
    `current_year()`).
    """
    raw = Path(raw_dir)
    folder = survey_folder(raw)
    misfits = _not_a_delivery(raw, folder)
    if misfits:
        raise ContractError(folder if folder.is_dir() else raw, misfits)
    found: dict[int, list[Path]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = SURVEY_FILE_RE.match(p.name)
            if not m:
                continue
            inside_folder(p, raw_dir)
            if p.is_file():
                found.setdefault(int(m.group(1)), []).append(p)
    this_year = current_year() if this_year is None else this_year
    for y, ps in sorted(found.items()):
        if y > this_year:
            raise ContractError(ps[0], [Failure(
                "future_year", None,
                detail=f"the file name says {y}, and this is {this_year}: a fiscal year cannot be in the future; "
                       f"check the year in the name",
            )])
    clashes = {y: ps for y, ps in found.items() if len(ps) > 1}
    if clashes:
        raise ContractError(folder, [Failure("duplicate_delivery", None, detail=(
            f"{_names(ps)} are all deliveries for fiscal year {y}; keep one of them" if len(ps) > 2 else
            f"{ps[0].name} and {ps[1].name} are both deliveries for fiscal year {y}; keep one of them"))
            for y, ps in sorted(clashes.items())])
    return {y: ps[0] for y, ps in sorted(found.items())}


def _names(paths: list[Path]) -> str:
    return ", ".join(p.name for p in paths[:-1]) + f" and {paths[-1].name}"


def year_of_file(path: str | Path) -> int | None:
    m = SURVEY_FILE_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


# --- every input ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RawFiles:
    """Where each contract input of a raw folder is (None when absent)."""

    raw_dir: Path
    survey: dict[int, Path]
    aida_firms: Path | None
    aida_subsidiaries: Path | None
    llma: Path | None
    census_employment: Path | None
    municipalities: Path  # the user's override or the bundled list
    column_map: Path | None


def _one(folder: Path, names: tuple[str, ...], raw_dir: Path | None = None) -> Path | None:
    """The one file of `names` in `folder`, if any; two are an error, and so is a link leading
    outside `raw_dir` (files are read only inside the raw folder)."""
    if raw_dir is not None:
        for n in names:
            if (folder / n).exists() or (folder / n).is_symlink():
                inside_folder(folder / n, raw_dir)
    hits = [folder / n for n in names if (folder / n).is_file()]
    if len(hits) > 1:
        raise ContractError(folder, [Failure("duplicate_delivery", None,
                                             detail=f"both {hits[0].name} and {hits[1].name} are there; keep one")])
    return hits[0] if hits else None


def municipality_list_path(raw_dir: str | Path | None = None) -> Path:
    """The user's ISTAT list in ``<raw>/reference/`` if there is one, else the bundled one."""
    if raw_dir is not None:
        hit = _one(Path(raw_dir) / "reference", MUNICIPALITY_OVERRIDES, Path(raw_dir))
        if hit is not None:
            return hit
    from offshoring import geo

    return geo.bundled_list_path()


def discover_raw_files(raw_dir: str | Path, this_year: int | None = None) -> RawFiles:
    """Every input of the raw folder (`this_year`: as for `discover_survey_files`)."""
    raw = Path(raw_dir)
    cmap = raw / "column_map.yaml"
    return RawFiles(
        raw_dir=raw,
        survey=discover_survey_files(raw, this_year),
        aida_firms=_one(raw / "aida", ("aida_firms.xlsx", "aida_firms.csv", "aida_firms.csv.gz"), raw),
        aida_subsidiaries=_one(raw / "aida", ("aida_subsidiaries.csv", "aida_subsidiaries.csv.gz"), raw),
        llma=_one(raw / "reference", ("llma.csv", "llma.csv.gz"), raw),
        census_employment=_one(raw / "reference", ("census_employment.csv", "census_employment.csv.gz"), raw),
        municipalities=municipality_list_path(raw),
        column_map=cmap if cmap.is_file() else None,
    )


def years_no_longer_delivered(held: list[int], raw_dir: str | Path) -> list[int]:
    """Of the survey years a warehouse holds (`held`), those whose delivery is no longer in the
    raw folder's ``survey/``. A folder the layout refuses is not judged here (its refusal says more)."""
    try:
        present = set(discover_survey_files(raw_dir))
    except (ContractError, OSError):
        return []
    return [y for y in held if y not in present]


def removed_delivery_sentence(gone: list[int], raw_dir: str | Path, db: str | Path, db_setting: str) -> str:
    """The refusal of a run over a warehouse holding survey years whose files are gone: a run would
    keep them in the panel, the models and the tables while their provenance lists only the files
    present. Said the same from the command line and from Dagster."""
    many = len(gone) > 1
    years = ", ".join(map(str, gone))
    return (f"The warehouse {db} holds survey year{'s' if many else ''} {years}, whose "
            f"deliver{'ies are' if many else 'y is'} no longer in {Path(raw_dir) / 'survey'}. A run "
            f"would keep {'them' if many else 'it'} in the panel and the tables without "
            f"{'their files' if many else 'its file'}. Put the file{'s' if many else ''} "
            f"back; to leave {'these years' if many else 'the year'} out of the study, start "
            f"a new warehouse ({db_setting}) from the files you keep.")
