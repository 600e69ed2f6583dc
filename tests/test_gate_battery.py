"""Bad deliveries, folders, keys and settings, each refused through the command line users run.

A warehouse and its reports are built once from contract files (the generator's files
without its truth.json, so nothing marks them synthetic, plus hand-written files where a
case says so). Every case then runs ``offshoring`` in a subprocess on a copy of that
state with one thing broken, and asserts: a non-zero exit; a plain message naming the
file (and row and column where there is one) and no Python traceback; every warehouse
table and every report file as before (``raw.load_log`` may only gain a ``rejected``
row); and no tax code of the input anywhere the run wrote (its output, the warehouse,
the Dagster storage and compute logs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "orchestration.cli"]
KEY = "battery-key-0123456789abcdef-not-secret"
FIRMS = 2500
SEED = 11

CODE_RE = re.compile(rb"(?<![0-9A-Za-z])([0-9]{11}|[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}"
                     rb"[A-Z][0-9LMNPQRSTUV]{3}[A-Z])(?![0-9A-Za-z])")


@dataclass
class Base:
    root: Path
    raw: Path
    db: Path
    reports: Path
    home: Path
    tables: dict[str, tuple]
    loaded_log: tuple
    report_files: dict[str, str]
    codes: frozenset[bytes]


def _env(root: Path, raw: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSHORING_")}
    env.update({"OFFSHORING_RAW_DIR": str(raw), "OFFSHORING_DB": str(root / "w.duckdb"),
                "OFFSHORING_REPORTS_DIR": str(root / "reports"), "DAGSTER_HOME": str(root / "home"),
                "OFFSHORING_PSEUDONYM_KEY": KEY})
    env.update(extra)
    return env


def cli(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def table_digests(db: Path) -> tuple[dict[str, tuple], tuple]:
    """Per table: row count and an order-free hash of its rows; and raw.load_log's loaded rows."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()]
        out = {}
        for name in names:
            if name == "raw.load_log":
                continue
            out[name] = tuple(con.execute(f"SELECT count(*), sum(hash(t)::HUGEINT) FROM {name} t").fetchall()[0])
        log = tuple(con.execute("SELECT load_id, partition, sha256, status FROM raw.load_log "
                                "WHERE status <> 'rejected' ORDER BY load_id").fetchall())
        return out, log
    finally:
        con.close()


def file_digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def codes_in(raw: Path) -> frozenset[bytes]:
    found = set()
    for p in list((raw / "survey").glob("*.csv")) + list((raw / "aida").glob("*.csv")):
        found.update(CODE_RE.findall(p.read_bytes()))
    return frozenset(found)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    from offshoring.synth import generate

    root = tmp_path_factory.mktemp("battery")
    raw = root / "raw"
    generate(raw, firms=FIRMS, seed=SEED, aida_format="csv")
    (raw / "truth.json").unlink()  # contract files, nothing marks them as the generator's
    proc = cli(["run"], _env(root, raw))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tables, log = table_digests(root / "w.duckdb")
    assert tables["raw.survey_returns"][0] > 0 and tables["panel.firm_years"][0] > 0
    return Base(root, raw, root / "w.duckdb", root / "reports", root / "home", tables, log,
                file_digests(root / "reports"), codes_in(raw))


@dataclass
class Case:
    root: Path
    raw: Path
    env: dict[str, str]
    before: tuple = ()
    expected_row: int | None = None  # the data row the refusal must name, when the break chose it

    @property
    def survey(self) -> Path:
        return self.raw / "survey"

    def lines(self, year: int) -> list[str]:
        return (self.survey / f"survey_{year}.csv").read_bytes().decode("cp1252").splitlines(keepends=True)

    def write(self, year: int, lines: list[str] | str) -> Path:
        p = self.survey / f"survey_{year}.csv"
        p.write_bytes(("".join(lines) if isinstance(lines, list) else lines).encode("cp1252"))
        return p


def new_case(base: Base, tmp: Path) -> Case:
    root = tmp / "case"
    root.mkdir()
    shutil.copytree(base.raw, root / "raw", symlinks=True)
    shutil.copy(base.db, root / "w.duckdb")
    shutil.copytree(base.reports, root / "reports")
    shutil.copytree(base.home, root / "home")
    return Case(root, root / "raw", _env(root, root / "raw"), (base.tables, base.loaded_log))


def assert_refused(base: Base, case: Case, proc: subprocess.CompletedProcess, *patterns: str,
                   db: Path | None = None) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    for pat in patterns:
        assert re.search(pat, out), f"{pat!r} not in:\n{out[-3000:]}"
    tables, log = table_digests(db or case.root / "w.duckdb")
    assert (tables, log) == case.before, "the warehouse changed"
    assert file_digests(case.root / "reports") == base.report_files, "the reports changed"
    assert_no_codes(base, case, out)
    return out


def assert_no_codes(base: Base, case: Case, out: str) -> None:
    leaked = set(CODE_RE.findall(out.encode())) & base.codes
    assert not leaked, "tax codes printed"
    for p in (case.root / "home").rglob("*"):
        if p.is_file():
            assert not (set(CODE_RE.findall(p.read_bytes())) & base.codes), f"tax code in {p}"
    if (case.root / "w.duckdb").exists():
        con = duckdb.connect(str(case.root / "w.duckdb"), read_only=True)
        try:
            cols = con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                               "WHERE data_type = 'VARCHAR'").fetchall()
            for s, t, c in cols:
                values = {r[0].encode() for r in con.execute(
                    f'SELECT DISTINCT "{c}" FROM {s}.{t} WHERE "{c}" IS NOT NULL').fetchall()}
                text = b"\n".join(values)
                assert not (set(CODE_RE.findall(text)) & base.codes), f"tax code in {s}.{t}.{c}"
        finally:
            con.close()


# --- the cases: (name, how to break the copy, command, patterns the message must match) -----------

def cut_to_header(c: Case):
    c.write(2010, c.lines(2010)[:1])


def cut_to_60_percent(c: Case):
    lines = c.lines(2010)
    c.write(2010, lines[: 1 + int(0.6 * (len(lines) - 1))])


def cut_inside_a_number(c: Case):
    text = "".join(c.lines(2010)).rstrip("\r\n")
    last = text.rsplit("\n", 1)[1]
    fields = last.split(";")
    cut = len(";".join(fields[:6])) + 2  # two characters into turnover
    c.write(2010, text[: len(text) - len(last) + cut])


def thousands_dots(c: Case):
    lines = c.lines(2010)
    header = lines[0].rstrip("\r\n").split(";")
    t = header.index("turnover")
    row = lines[3].rstrip("\r\n").split(";")
    row[t] = "352.300"
    lines[3] = ";".join(row) + "\r\n"
    c.write(2010, lines)


def duplicate_turnover(c: Case):
    lines = c.lines(2010)
    out = []
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        out.append(("turnover;" if i == 0 else "1;") + body + "\r\n")
    c.write(2010, out)


def no_header(c: Case):
    c.write(2010, c.lines(2010)[1:])


def symlink_outside(c: Case):
    outside = c.root / "elsewhere.csv"
    outside.write_bytes((c.survey / "survey_2012.csv").read_bytes())
    (c.survey / "survey_2013.csv").symlink_to(outside)


def fake_truth_without_key(c: Case):
    (c.raw / "truth.json").write_text(json.dumps({"generator": "offshoring.synth"}))
    c.env.pop("OFFSHORING_PSEUDONYM_KEY")


def other_key(c: Case):
    c.env["OFFSHORING_PSEUDONYM_KEY"] = "another-key-0123456789abcdef-xyz"


def future_year(c: Case):
    shutil.copy(c.survey / "survey_2012.csv", c.survey / "survey_2031.csv")


def two_deliveries(c: Case):
    import gzip

    (c.survey / "survey_2010.csv.gz").write_bytes(gzip.compress((c.survey / "survey_2010.csv").read_bytes()))


def corrupt_gzip(c: Case):
    import gzip

    data = gzip.compress((c.survey / "survey_2010.csv").read_bytes())
    (c.survey / "survey_2010.csv").unlink()
    (c.survey / "survey_2010.csv.gz").write_bytes(data[: len(data) // 2])


def broken_column_map(c: Case):
    (c.raw / "column_map.yaml").write_text("survey:\n  columns:\n    fatturato: turnover\n   bad: [\n")


def missing_column(c: Case):
    lines = c.lines(2010)
    header = lines[0].rstrip("\r\n").split(";")
    k = header.index("employees")
    c.write(2010, [";".join(f for j, f in enumerate(l.rstrip("\r\n").split(";")) if j != k) + "\r\n"
                   for l in lines])


def _set_cell(c: Case, year: int, row: int, column: str, value: str):
    _set_file_cell(c.survey / f"survey_{year}.csv", row, column, value)


def unparseable_number(c: Case):
    _set_cell(c, 2010, 5, "turnover", "about a million")


def wrong_year(c: Case):
    _set_cell(c, 2010, 7, "year", "2009")


def negative_turnover(c: Case):
    _set_cell(c, 2010, 4, "turnover", "-5000")


def share_out_of_range(c: Case):
    _set_cell(c, 2010, 4, "export_share", "150")


def malformed_tax_code(c: Case):
    _set_cell(c, 2010, 4, "tax_code", "12345678901X")


def duplicate_filing(c: Case):
    lines = c.lines(2010)
    c.write(2010, lines + [lines[5]])


def two_digit_filing_date(c: Case):
    _set_cell(c, 2010, 6, "filing_date", "20/09/11")


def _counted_row(c: Case, year: int) -> int:
    """A data row of `year` the panel uses: a clothing or footwear return, its firm's only filing."""
    lines = c.lines(year)
    header = lines[0].rstrip("\r\n").split(";")
    cells = [l.rstrip("\r\n").split(";") for l in lines[1:]]
    codes = [r[header.index("tax_code")] for r in cells]
    for i, r in enumerate(cells, 1):
        ateco = r[header.index("ateco_2007")].replace(".", "")
        if codes.count(r[header.index("tax_code")]) == 1 and (ateco.startswith("14") or ateco.startswith("1520")):
            return i
    raise AssertionError("no such row")


def empty_municipality(c: Case):
    row = _counted_row(c, 2010)
    _set_cell(c, 2010, row, "municipality_code", "")
    c.expected_row = row


def unplaceable_municipality(c: Case):
    row = _counted_row(c, 2010)
    _set_cell(c, 2010, row, "municipality_code", "999001")
    c.expected_row = row


def _set_file_cell(path: Path, row: int, column: str, value: str):
    lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(";")
    cells = lines[row].rstrip("\r\n").split(";")
    cells[header.index(column)] = value
    lines[row] = ";".join(cells) + "\r\n"
    path.write_bytes("".join(lines).encode("cp1252"))


def aida_unknown_province(c: Case):
    _set_file_cell(c.raw / "aida" / "aida_firms.csv", 3, "province", "ZZ")


def census_count_with_a_mark(c: Case):
    _set_file_cell(c.raw / "reference" / "census_employment.csv", 2, "employees", "2.000")


def aida_empty_province(c: Case):
    _set_file_cell(c.raw / "aida" / "aida_firms.csv", 4, "province", "")


def aida_empty_ateco(c: Case):
    _set_file_cell(c.raw / "aida" / "aida_firms.csv", 5, "ateco_2007", "")


def subsidiary_empty_share(c: Case):
    _set_file_cell(c.raw / "aida" / "aida_subsidiaries.csv", 2, "ownership_pct", "")


def census_empty_count(c: Case):
    _set_file_cell(c.raw / "reference" / "census_employment.csv", 3, "employees", "")


def missing_aida(c: Case):
    (c.raw / "aida" / "aida_firms.csv").unlink()


def small_new_year(c: Case):
    # hand-written: a 2013 delivery of three returns, far below its neighbour 2012
    from offshoring.readers.survey import SURVEY_COLUMNS

    head = ";".join(SURVEY_COLUMNS) + "\r\n"
    rows = ["00000000000;2013;15/05/2014;141310;015146;250000;3;90000;60000;1000;2,5;10;1;local;0;1;0;0;0;0;0\r\n",
            "00000000018;2013;15/05/2014;141310;015146;250000;3;90000;60000;1000;2,5;10;1;local;0;1;0;0;0;0;0\r\n",
            "00000000026;2013;15/05/2014;152010;015146;250000;3;90000;60000;1000;2,5;10;1;local;0;1;0;0;0;0;0\r\n"]
    c.write(2013, [head] + rows)


def key_file_in_repository(c: Case):
    c.env.pop("OFFSHORING_PSEUDONYM_KEY")
    c.env["OFFSHORING_PSEUDONYM_KEY_FILE"] = str(ROOT / "config" / "thresholds.yaml")


def bad_synthetic_setting(c: Case):
    c.env["OFFSHORING_SYNTHETIC"] = "maybe"


def demo_on_real_warehouse(c: Case):
    empty = c.root / "empty_raw"
    c.env["OFFSHORING_RAW_DIR"] = str(empty)


def real_files_on_demo_warehouse(c: Case):
    con = duckdb.connect(str(c.root / "w.duckdb"))
    con.execute("UPDATE meta.identity SET origin = 'synthetic'")
    con.close()


def demo_on_real_files(c: Case):
    c.env["OFFSHORING_DB"] = str(c.root / "demo.duckdb")
    c.env["OFFSHORING_REPORTS_DIR"] = str(c.root / "demo_reports")  # not the real run's reports


def reports_dir_is_a_file(c: Case):
    (c.root / "a_file").write_text("not a folder\n")
    c.env["OFFSHORING_REPORTS_DIR"] = str(c.root / "a_file")


def removed_delivery(c: Case):
    (c.survey / "survey_2005.csv").rename(c.root / "survey_2005.csv")


def synthetic_flag_on_real_files(c: Case):
    pass  # `run --synthetic` on files that are not the generator's (no truth.json)


def blank_key(c: Case):
    c.env["OFFSHORING_PSEUDONYM_KEY"] = " " * 16


def district_threshold_as_text(c: Case):
    cfg = c.root / "settings"
    cfg.mkdir()
    (cfg / "districts.yaml").write_text('manufacturing_lq_threshold: "1,5"\n')
    c.env["OFFSHORING_CONFIG_DIR"] = str(cfg)


def settings_file_misnamed(c: Case):
    cfg = c.root / "settings"
    cfg.mkdir()
    (cfg / "thresholds.yml").write_text("turnover_ceiling:\n  default: 6000000\n")
    c.env["OFFSHORING_CONFIG_DIR"] = str(cfg)


def two_keys_that_disagree(c: Case):
    key_file = c.root / "other.key"
    key_file.write_text("another-battery-key-0123456789abcdef\n")
    c.env["OFFSHORING_PSEUDONYM_KEY_FILE"] = str(key_file)  # beside OFFSHORING_PSEUDONYM_KEY


def ownership_threshold_as_true(c: Case):
    cfg = c.root / "settings"
    cfg.mkdir()
    (cfg / "thresholds.yaml").write_text("offshoring_ownership_pct: true\n")  # was read as 1%
    c.env["OFFSHORING_CONFIG_DIR"] = str(cfg)


def figure_year_without_delivery(c: Case):
    cfg = c.root / "settings"
    cfg.mkdir()
    (cfg / "reports.yaml").write_text("figure2:\n  year: 2030\n")
    c.env["OFFSHORING_CONFIG_DIR"] = str(cfg)


def empty_db_setting(c: Case):
    c.env["OFFSHORING_DB"] = ""  # fell back to data/warehouse.duckdb inside the checkout


def reports_holding_raw(c: Case):
    c.env["OFFSHORING_REPORTS_DIR"] = str(c.root)  # the raw folder is root/raw


def reports_inside_raw(c: Case):
    c.env["OFFSHORING_REPORTS_DIR"] = str(c.raw / "survey")


def warehouse_folder_unwritable(c: Case):
    c.env["OFFSHORING_DB"] = "/proc/offshoring_battery.duckdb"


def misspelt_setting(c: Case):
    cfg = c.root / "settings"
    cfg.mkdir()
    (cfg / "thresholds.yaml").write_text("turnover_ceiling:\n  default: 7000000\n")
    c.env["OFFSHORING_CONFIGDIR"] = str(cfg)  # was ignored: the default ceiling ran


def reports_folder_unwritable(c: Case):
    c.env["OFFSHORING_REPORTS_DIR"] = "/proc/offshoring_battery_reports"


def raw_dir_with_a_trailing_space(c: Case):
    c.env["OFFSHORING_RAW_DIR"] = str(c.raw) + " "


def demo_into_a_folder_of_other_files(c: Case):
    # no contract file, but a misplaced delivery and a note: the demo must not write beside them
    other = c.root / "other_raw"
    other.mkdir()
    (other / "README.txt").write_text("my notes\n")
    shutil.copy(c.survey / "survey_2010.csv", other / "survey_2010.csv")
    c.env["OFFSHORING_RAW_DIR"] = str(other)
    c.env["OFFSHORING_DB"] = str(c.root / "demo.duckdb")
    c.env["OFFSHORING_REPORTS_DIR"] = str(c.root / "demo_reports")


def demo_report_year_not_generated(c: Case):
    # the generator's years set to 2009-2012, the figures' default year 2008: refused before
    # any file is generated (the files used to be written, then the run refused)
    cfg = c.root / "settings"
    cfg.mkdir()
    (cfg / "synth.yaml").write_text("years: [2009, 2012]\n")
    c.env["OFFSHORING_CONFIG_DIR"] = str(cfg)
    c.env["OFFSHORING_RAW_DIR"] = str(c.root / "empty_raw")
    c.env["OFFSHORING_DB"] = str(c.root / "demo.duckdb")
    c.env["OFFSHORING_REPORTS_DIR"] = str(c.root / "demo_reports")


def demo_over_real_reports(c: Case):
    c.env["OFFSHORING_RAW_DIR"] = str(c.root / "empty_raw")
    c.env["OFFSHORING_DB"] = str(c.root / "demo.duckdb")


def survey_at_the_top(c: Case):
    # the deliveries beside aida/ and reference/, not in survey/ (the contract's survey/survey_<YYYY>.csv)
    for p in sorted(c.survey.iterdir()):
        p.rename(c.raw / p.name)
    c.survey.rmdir()


def nested_year_folder(c: Case):
    (c.survey / "2013").mkdir()
    (c.survey / "2013" / "survey_2013.csv").write_bytes((c.survey / "survey_2012.csv").read_bytes())


def xlsx_delivery(c: Case):
    shutil.copy(c.survey / "survey_2012.csv", c.survey / "survey_2013.xlsx")


def folder_named_like_a_delivery(c: Case):
    (c.survey / "survey_2014.csv").mkdir()
    shutil.copy(c.survey / "survey_2012.csv", c.survey / "survey_2014.csv" / "data.csv")


def _column_map(text: str) -> Callable[[Case], None]:
    def write(c: Case):
        (c.raw / "column_map.yaml").write_text(text)
    return write


CASES: list[tuple[str, Callable[[Case], None], list[str], list[str]]] = [
    ("cut_to_header", cut_to_header, ["run"], [r"survey_2010\.csv", r"smaller_delivery", r"--accept-smaller 2010"]),
    ("cut_to_60_percent", cut_to_60_percent, ["run"], [r"survey_2010\.csv", r"smaller_delivery", r"-40%|-39%|-41%"]),
    ("cut_inside_a_number", cut_inside_a_number, ["run"], [r"survey_2010\.csv", r"ragged_row", r"row"]),
    ("thousands_dots", thousands_dots, ["run"], [r"survey_2010\.csv", r"turnover", r"\b3\b"]),
    ("duplicate_turnover", duplicate_turnover, ["run"], [r"survey_2010\.csv", r"turnover"]),
    ("no_header", no_header, ["run"], [r"survey_2010\.csv", r"missing_columns|header"]),
    ("symlink_outside", symlink_outside, ["run"], [r"survey_2013\.csv", r"outside"]),
    ("fake_truth_without_key", fake_truth_without_key, ["run"], [r"OFFSHORING_PSEUDONYM_KEY"]),
    ("other_key", other_key, ["run"], [r"another key", r"--rekey"]),
    ("future_year", future_year, ["run"], [r"survey_2031\.csv", r"2031"]),
    ("two_deliveries", two_deliveries, ["run"], [r"survey_2010\.csv", r"survey_2010\.csv\.gz"]),
    ("corrupt_gzip", corrupt_gzip, ["run"], [r"survey_2010\.csv\.gz", r"gzip"]),
    ("broken_column_map", broken_column_map, ["run"], [r"column_map\.yaml", r"line \d+"]),
    ("missing_column", missing_column, ["run"], [r"survey_2010\.csv", r"employees"]),
    ("unparseable_number", unparseable_number, ["run"], [r"survey_2010\.csv", r"turnover", r"\b5\b"]),
    ("wrong_year", wrong_year, ["run"], [r"survey_2010\.csv", r"year", r"\b7\b"]),
    ("negative_turnover", negative_turnover, ["run"], [r"survey_2010\.csv", r"turnover", r"\b4\b"]),
    ("share_out_of_range", share_out_of_range, ["run"], [r"survey_2010\.csv", r"export_share", r"\b4\b"]),
    ("malformed_tax_code", malformed_tax_code, ["run"], [r"survey_2010\.csv", r"tax_code", r"\b4\b"]),
    ("duplicate_filing", duplicate_filing, ["run"], [r"survey_2010\.csv", r"duplicate_filing"]),
    ("two_digit_filing_date", two_digit_filing_date, ["run"], [r"survey_2010\.csv", r"unparseable_date", r"\b6\b"]),
    ("empty_municipality", empty_municipality, ["run"], [r"survey_2010\.csv", r"missing_municipality"]),
    ("unplaceable_municipality", unplaceable_municipality, ["run"],
     [r"survey_2010\.csv", r"unplaceable_municipality", r"code_110"]),
    ("aida_unknown_province", aida_unknown_province, ["run"], [r"aida_firms\.csv", r"unknown_province", r"'ZZ'", r"\b3\b"]),
    ("census_count_with_a_mark", census_count_with_a_mark, ["run"],
     [r"census_employment\.csv", r"ambiguous_number", r"employees", r"\b2\b"]),
    # an empty cell is a missing value (the contract): where no reading of it is safe, refused
    ("aida_empty_province", aida_empty_province, ["run"],
     [r"aida_firms\.csv", r"missing_value", r"province", r"\b4\b", r"fill it in from the AIDA record"]),
    ("aida_empty_ateco", aida_empty_ateco, ["run"],
     [r"aida_firms\.csv", r"missing_value", r"ateco_2007", r"\b5\b", r"fill it in from the AIDA record"]),
    ("subsidiary_empty_share", subsidiary_empty_share, ["run"],
     [r"aida_subsidiaries\.csv", r"missing_value", r"ownership_pct", r"\b2\b", r"an empty share cannot say"]),
    ("census_empty_count", census_empty_count, ["run"],
     [r"census_employment\.csv", r"missing_value", r"employees", r"\b3\b", r"suppressed cannot be read as 0"]),
    ("missing_aida", missing_aida, ["run"], [r"aida_firms"]),
    ("small_new_year", small_new_year, ["run"], [r"survey_2013\.csv", r"smaller_delivery", r"2012"]),
    ("key_file_in_repository", key_file_in_repository, ["run"], [r"inside the repository"]),
    ("bad_synthetic_setting", bad_synthetic_setting, ["run"], [r"OFFSHORING_SYNTHETIC"]),
    ("demo_on_real_warehouse", demo_on_real_warehouse, ["demo", "--firms", "300"], [r"holds real survey data"]),
    ("real_files_on_demo_warehouse", real_files_on_demo_warehouse, ["run"], [r"holds synthetic demo data"]),
    ("demo_on_real_files", demo_on_real_files, ["demo"], [r"runs only on synthetic files", r"no truth\.json"]),
    ("survey_at_the_top", survey_at_the_top, ["run"],
     [r"survey_2005\.csv, .*survey_2012\.csv are at the top of the raw folder", r"move them into .*survey/"]),
    ("nested_year_folder", nested_year_folder, ["run"],
     [r"survey/2013/survey_2013\.csv is in a subfolder", r"survey_<YYYY>\.csv"]),
    ("xlsx_delivery", xlsx_delivery, ["run"], [r"survey/survey_2013\.xlsx looks like a delivery", r"save it as CSV"]),
    ("folder_named_like_a_delivery", folder_named_like_a_delivery, ["run"],
     [r"survey/survey_2014\.csv is a folder named like a delivery"]),
    ("column_map_scale_typo", _column_map("aida_firms:\n  scale:\n    turnovers: 1000\n"), ["run"],
     [r"column_map\.yaml: aida_firms\.scale\.turnovers: 'turnovers' is no variable of aida_firms "
      r"\(did you mean 'turnover'\?\)"]),
    ("column_map_scale_factor", _column_map("aida_firms:\n  scale:\n    turnover: mille\n"), ["run"],
     [r"column_map\.yaml: aida_firms\.scale\.turnover: the factor must be a positive number"]),
    ("column_map_values_typo", _column_map("survey:\n  values:\n    market_areas: {locale: local}\n"), ["run"],
     [r"column_map\.yaml: survey\.values\.market_areas: .*did you mean 'market_area'"]),
    ("column_map_unknown_source", _column_map("surveys:\n  columns:\n    RICAVI: turnover\n"), ["run"],
     [r"column_map\.yaml: surveys: 'surveys' is no source \(did you mean 'survey'\?\)"]),
    ("column_map_unknown_option", _column_map("survey:\n  decimals: ','\n  columns:\n    RICAVI: turnover\n"),
     ["run"], [r"column_map\.yaml: survey\.decimals: .*did you mean 'decimal'"]),
    ("column_map_separator", _column_map("survey:\n  separator: ';;'\n"), ["run"],
     [r"column_map\.yaml: survey\.separator: must be one character"]),
    ("reports_dir_is_a_file", reports_dir_is_a_file, ["run"], [r"a_file", r"OFFSHORING_REPORTS_DIR", r"is a file"]),
    ("removed_delivery", removed_delivery, ["run"],
     [r"holds survey year 2005", r"no longer in", r"Put the file back"]),
    ("synthetic_flag_on_real_files", synthetic_flag_on_real_files, ["run", "--synthetic"],
     [r"Synthetic mode", r"no truth\.json"]),
    ("blank_key", blank_key, ["run"], [r"OFFSHORING_PSEUDONYM_KEY is shorter than 16 bytes"]),
    ("district_threshold_as_text", district_threshold_as_text, ["run"],
     [r"districts\.yaml", r"manufacturing_lq_threshold='1,5'", r"expected a number"]),
    ("settings_file_misnamed", settings_file_misnamed, ["run"],
     [r"thresholds\.yml is not a settings file", r"rename it thresholds\.yaml"]),
    ("empty_db_setting", empty_db_setting, ["run"], [r"OFFSHORING_DB is set but empty", r"unset it"]),
    ("two_keys_that_disagree", two_keys_that_disagree, ["run"],
     [r"OFFSHORING_PSEUDONYM_KEY and OFFSHORING_PSEUDONYM_KEY_FILE are both set, to different keys"]),
    ("ownership_threshold_as_true", ownership_threshold_as_true, ["run"],
     [r"thresholds\.yaml", r"offshoring_ownership_pct'?: Input should be a valid number"]),
    ("figure_year_without_delivery", figure_year_without_delivery, ["run"],
     [r"reports\.yaml: figure2\.year is 2030, a year with no survey delivery \(the deliveries are 2005-2012\)"]),
    ("reports_holding_raw", reports_holding_raw, ["run"],
     [r"OFFSHORING_REPORTS_DIR\) holds the raw folder", r"written around the deliveries", r"a folder of its own"]),
    ("reports_inside_raw", reports_inside_raw, ["run"],
     [r"OFFSHORING_REPORTS_DIR\) is inside the raw folder", r"a folder of its own"]),
    ("warehouse_folder_unwritable", warehouse_folder_unwritable, ["run"],
     [r"/proc/offshoring_battery\.duckdb \(OFFSHORING_DB\) cannot be written"]),
    ("misspelt_setting", misspelt_setting, ["run"],
     [r"The environment sets OFFSHORING_CONFIGDIR \(did you mean OFFSHORING_CONFIG_DIR\?\), which no "
      r"setting of this pipeline reads"]),
    ("reports_folder_unwritable", reports_folder_unwritable, ["run"],
     [r"/proc/offshoring_battery_reports \(OFFSHORING_REPORTS_DIR\) cannot be written", r"/proc is not a writable"]),
    ("raw_dir_with_a_trailing_space", raw_dir_with_a_trailing_space, ["run"],
     [r"OFFSHORING_RAW_DIR=.* begins or ends with a space", r"Remove the space"]),
    ("demo_into_a_folder_of_other_files", demo_into_a_folder_of_other_files, ["demo", "--firms", "300"],
     [r"writes its synthetic files only into an empty folder", r"README\.txt, survey_2010\.csv",
      r"nothing was written"]),
    ("demo_report_year_not_generated", demo_report_year_not_generated, ["demo", "--firms", "300"],
     [r"reports\.yaml: figure1\.year is 2008, a year with no survey delivery \(the deliveries are 2009-2012\)"]),
    ("demo_over_real_reports", demo_over_real_reports, ["demo", "--firms", "300"],
     [r"holds reports of real data", r"OFFSHORING_REPORTS_DIR"]),
]

#: refused by the pre-flight, before any run: the command line's exit code 2
PRE_FLIGHT = {"survey_at_the_top", "nested_year_folder", "xlsx_delivery", "folder_named_like_a_delivery",
              "column_map_scale_typo", "column_map_scale_factor", "column_map_values_typo",
              "column_map_unknown_source", "column_map_unknown_option", "column_map_separator",
              "reports_dir_is_a_file", "removed_delivery", "synthetic_flag_on_real_files", "blank_key",
              "district_threshold_as_text", "settings_file_misnamed", "demo_over_real_reports",
              "aida_empty_province", "aida_empty_ateco", "subsidiary_empty_share", "census_empty_count",
              "demo_into_a_folder_of_other_files", "empty_db_setting", "reports_inside_raw", "reports_holding_raw",
              "figure_year_without_delivery", "two_keys_that_disagree", "ownership_threshold_as_true",
              "warehouse_folder_unwritable", "reports_folder_unwritable", "raw_dir_with_a_trailing_space",
              "misspelt_setting", "demo_report_year_not_generated"}


@pytest.mark.parametrize("name,breaks,args,patterns", CASES, ids=[c[0] for c in CASES])
def test_refused_and_nothing_changed(base, tmp_path, name, breaks, args, patterns):
    case = new_case(base, tmp_path)
    breaks(case)
    case.before = table_digests(case.root / "w.duckdb")
    proc = cli(args, case.env)
    out = assert_refused(base, case, proc, *patterns)
    if name in PRE_FLIGHT:
        assert proc.returncode == 2 and "rerun with --debug" not in out, out[-3000:]
    if case.expected_row is not None:
        assert re.search(rf"\b{case.expected_row}\b", out), out[-3000:]
    if name in ("demo_on_real_warehouse", "demo_over_real_reports", "demo_report_year_not_generated"):
        assert not (case.root / "empty_raw").exists(), "the demo generated data before refusing"
    if name == "demo_into_a_folder_of_other_files":
        assert sorted(p.name for p in (case.root / "other_raw").iterdir()) == ["README.txt", "survey_2010.csv"]


def test_missing_and_empty_raw_folder(base, tmp_path):
    case = new_case(base, tmp_path)
    missing = case.root / "raw_misspelt"
    case.env["OFFSHORING_RAW_DIR"] = str(missing)
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, r"raw_misspelt does not exist", r"offshoring demo")
    assert not missing.exists(), "the run created the misspelt folder"
    (case.root / "empty").mkdir()
    case.env["OFFSHORING_RAW_DIR"] = str(case.root / "empty")
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, r"No survey deliveries", r"survey_<YYYY>\.csv")
    assert list((case.root / "empty").iterdir()) == [], "the run wrote into the empty folder"


def test_generated_files_need_the_demo(base, tmp_path):
    from offshoring.synth import generate

    case = new_case(base, tmp_path)
    raw = case.root / "generated"
    generate(raw, firms=200, seed=3)
    case.env["OFFSHORING_RAW_DIR"] = str(raw)
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, r"generator's synthetic files", r"offshoring demo")


@pytest.mark.parametrize("survey_format,aida_format,marked", [("csv", "xlsx", r"aida_firms\.xlsx"),
                                                               ("parquet", "csv", r"survey_2009\.parquet")])
def test_generated_files_without_truth_are_still_synthetic(base, tmp_path, survey_format, aida_format, marked):
    """A copy of the demo's files without truth.json: the generator's own marks (the workbook's
    author, the Parquet metadata) keep a run for real data from labelling them real."""
    from offshoring.synth import generate

    case = new_case(base, tmp_path)
    raw = case.root / "generated"
    generate(raw, firms=200, seed=3, years="2009-2010", survey_format=survey_format, aida_format=aida_format)
    (raw / "truth.json").unlink()
    case.env["OFFSHORING_RAW_DIR"] = str(raw)
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, r"written by the synthetic-data generator", marked, r"offshoring demo")


def test_full_disk_is_one_plain_sentence(base, tmp_path):
    """The warehouse on a filesystem with no room left: refused, rolled back, said plainly."""
    case = new_case(base, tmp_path)
    mnt = case.root / "small_disk"
    mnt.mkdir()
    size = (case.root / "w.duckdb").stat().st_size + 64 * 1024
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"this test needs root to mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        shutil.copy(case.root / "w.duckdb", mnt / "w.duckdb")
        case.env["OFFSHORING_DB"] = str(mnt / "w.duckdb")
        # a corrected re-delivery (same returns, other filing dates): not skipped, must be written
        lines = case.lines(2010)
        case.write(2010, [lines[0]] + [l.replace("/2011;", "/2012;") for l in lines[1:]])
        proc = cli(["run"], case.env)
        out = assert_refused(base, case, proc, r"disk .* is full|No space left", db=mnt / "w.duckdb")
        assert "no transaction is active" not in out
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_smaller_year_is_accepted_when_the_user_says_so(base, tmp_path):
    case = new_case(base, tmp_path)
    cut_to_60_percent(case)
    proc = cli(["run", "--accept-smaller", "2010"], case.env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    con = duckdb.connect(str(case.root / "w.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM raw.survey_returns WHERE year = 2010").fetchall()[0][0]
        warnings = con.execute("SELECT warnings FROM raw.load_log WHERE partition = '2010' "
                               "AND status = 'loaded' ORDER BY loaded_at DESC LIMIT 1").fetchall()[0][0]
    finally:
        con.close()
    assert n < base.tables["raw.survey_returns"][0] / 8  # about 60% of one year of eight
    assert "accepted_smaller_delivery" in warnings and "accepted by the user for 2010" in warnings


def test_a_warning_check_is_said_and_alerted_from_the_command_line(base, tmp_path):
    """A year re-delivered in thousands of EUR passes the gate (a WARN check, not a refusal):
    the command line said only "check ... did not pass (WARN)" and sent no alert (the daemon's
    sensors never see its run failures, and its check failures waited for the next UI start).
    Now each failed check is a plain line with its reason, and the alert goes out, once."""
    import http.server
    import threading

    bodies: list[str] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        case = new_case(base, tmp_path)
        path = case.survey / "survey_2012.csv"
        lines = case.lines(2012)
        header = lines[0].rstrip("\r\n").split(";")
        amounts = [header.index(c) for c in header
                   if c in ("turnover", "value_added", "wage_costs", "net_income") or c.startswith("subcontracting_")]
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.rstrip("\r\n").split(";")
            for i in amounts:
                if cells[i]:
                    cells[i] = f"{float(cells[i].replace(',', '.')) / 1000:.2f}".replace(".", ",")
            out.append(";".join(cells) + "\r\n")
        path.write_bytes("".join(out).encode("cp1252"))
        cfg = case.root / "settings"
        cfg.mkdir()
        (cfg / "alerts.yaml").write_text(
            "enabled: true\n"
            f"slack: {{enabled: true, webhook_url: 'http://127.0.0.1:{server.server_address[1]}/hook'}}\n"
            f"sent_log: {case.root / 'sent.json'}\n")
        case.env["OFFSHORING_CONFIG_DIR"] = str(cfg)
        proc = cli(["run"], case.env)
        out_text = proc.stdout + proc.stderr
        assert proc.returncode == 0, out_text[-3000:]
        assert re.search(r"Warning: check survey_returns:amounts_on_usual_scale \[2012\] did not pass: \S+",
                         out_text), out_text[-3000:]
        assert "Alert sent (slack): [offshoring] check amounts_on_usual_scale WARN: survey_returns [2012]" \
            in out_text, out_text[-3000:]
        assert len([b for b in bodies if "amounts_on_usual_scale" in b]) == 1
        assert_no_codes(base, case, out_text + "".join(bodies))
    finally:
        server.shutdown()


def test_rekey_rebuilds_under_the_new_key_and_keeps_the_old_on_failure(base, tmp_path):
    from offshoring.identity import key_fingerprint

    case = new_case(base, tmp_path)
    new_key = "a-brand-new-key-0123456789abcdef"
    case.env["OFFSHORING_PSEUDONYM_KEY"] = new_key
    # a broken delivery: the rebuild fails and the old warehouse stays as it was
    cut_inside_a_number(case)
    failed = cli(["run", "--rekey"], case.env)
    assert failed.returncode != 0 and "ragged_row" in failed.stdout + failed.stderr
    assert table_digests(case.root / "w.duckdb") == (base.tables, base.loaded_log)
    assert not (case.root / "w.duckdb.rekey").exists()
    # with the delivery restored the rebuild replaces it
    shutil.copy(base.raw / "survey" / "survey_2010.csv", case.survey / "survey_2010.csv")
    done = cli(["run", "--rekey"], case.env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    con = duckdb.connect(str(case.root / "w.duckdb"), read_only=True)
    try:
        fp = con.execute("SELECT key_fingerprint FROM meta.identity").fetchall()[0][0]
        n = con.execute("SELECT count(*) FROM raw.survey_returns").fetchall()[0][0]
        old_ids = {r[0] for r in duckdb.connect(str(base.db), read_only=True).execute(
            "SELECT DISTINCT firm_id FROM raw.survey_returns").fetchall()}
        new_ids = {r[0] for r in con.execute("SELECT DISTINCT firm_id FROM raw.survey_returns").fetchall()}
    finally:
        con.close()
    assert fp == key_fingerprint(new_key.encode())
    assert n == base.tables["raw.survey_returns"][0]
    assert not (old_ids & new_ids)  # every pseudonym is new
    again = cli(["run"], case.env)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_debug_shows_the_stack_trace(base, tmp_path):
    case = new_case(base, tmp_path)
    unparseable_number(case)
    plain = cli(["run"], case.env)
    debug = cli(["run", "--debug"], case.env)
    assert plain.returncode != 0 and debug.returncode != 0
    frame = re.compile(r'File ".+", line \d+')
    assert not frame.search(plain.stdout + plain.stderr)
    assert frame.search(debug.stdout + debug.stderr)


def test_an_unchanged_folder_is_a_no_op(base, tmp_path):
    case = new_case(base, tmp_path)
    proc = cli(["run"], case.env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Nothing changed since the last complete run" in proc.stdout
    assert table_digests(case.root / "w.duckdb") == (base.tables, base.loaded_log)
    assert file_digests(case.root / "reports") == base.report_files
    # a changed specification is not "nothing changed"
    cfg = case.root / "config"
    cfg.mkdir()
    (cfg / "panel.yaml").write_text("leave_one_out: false\n")
    changed = cli(["run"], {**case.env, "OFFSHORING_CONFIG_DIR": str(cfg)})
    assert changed.returncode == 0 and "Nothing changed" not in changed.stdout


#: column maps that break one input each; no data file changes, so only the map says the run
#: must read every input again (orchestration.pipeline reloads them all when the map changed)
MAP_CHANGES = [
    ("survey", "survey:\n  columns:\n    roi: turnover\n", [r"survey_2005\.csv", r"turnover", r"duplicate_columns"]),
    ("census", "census_employment:\n  columns:\n    local_units: employees\n",
     [r"census_employment\.csv", r"employees", r"duplicate_columns"]),
]


@pytest.mark.parametrize("name,text,patterns", MAP_CHANGES, ids=[m[0] for m in MAP_CHANGES])
def test_a_new_column_map_is_checked_against_every_input_before_any_load(base, tmp_path, name, text, patterns):
    """Only column_map.yaml changed: every input is read again under it before the run starts, and
    one it breaks is refused with nothing replaced (the run would have reloaded the others first)."""
    case = new_case(base, tmp_path)
    (case.raw / "column_map.yaml").write_text(text)
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, *patterns)
    assert proc.returncode == 2, "refused by the run, not before it"  # EXIT_REFUSED: the pre-flight


def test_a_new_code_version_checks_every_input_before_any_load(base, tmp_path):
    """A new version of the pipeline reloads every input (its loads are not up to date), and its
    readers may be stricter: every input is checked before the run starts, so one that the new
    version refuses stops the run with nothing replaced. Simulated: the warehouse's loads are
    marked as an earlier version's, and the LLMA map holds a code outside the municipality list
    with the hash of the file that version loaded (it accepted such a code)."""
    case = new_case(base, tmp_path)
    llma = case.raw / "reference" / "llma.csv"
    lines = llma.read_bytes().splitlines(keepends=True)
    lines[2] = b"001999" + lines[2][6:]  # well-formed, no municipality of the list
    llma.write_bytes(b"".join(lines))
    sha = hashlib.sha256(llma.read_bytes()).hexdigest()
    con = duckdb.connect(str(case.root / "w.duckdb"))
    try:
        con.execute("UPDATE raw.load_log SET code_version = 'an-earlier-version'")
        con.execute("UPDATE raw.load_log SET sha256 = ? WHERE table_name = 'llma' AND status = 'loaded'", [sha])
    finally:
        con.close()
    case.before = table_digests(case.root / "w.duckdb")
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, r"llma\.csv", r"unlisted_municipality")
    assert proc.returncode == 2, "refused by the run, not before it"


def test_a_new_municipality_list_checks_every_input_against_it_before_any_load(base, tmp_path):
    """A user's newer municipality list dropped in reference/: the LLMA map (unchanged, loaded
    before) is checked again against it before the run starts. A map code the new list lacks
    stops the run with nothing replaced (the run would have loaded the list and left those
    municipalities' firms without an area)."""
    from offshoring import geo
    from offshoring.readers.common import header_line, to_utf8

    case = new_case(base, tmp_path)
    first = (case.raw / "reference" / "llma.csv").read_bytes().decode("cp1252").splitlines()[1].split(";")[0]
    text, _ = to_utf8(geo.bundled_list_path().read_bytes())
    text = text.decode("utf-8").lstrip("\ufeff")
    head = header_line(text)
    body = [line for line in text[len(head):].lstrip("\r\n").splitlines()
            if line.strip() and not line.startswith(f"{first[:3]}{first[3:]}") and f";{first};" not in line]
    (case.raw / "reference" / "Elenco-comuni-italiani.csv").write_bytes(
        (head + "\r\n" + "\r\n".join(body) + "\r\n").encode("cp1252"))
    proc = cli(["run"], case.env)
    assert_refused(base, case, proc, r"llma\.csv", r"unlisted_municipality", r"Elenco-comuni-italiani\.csv")
    assert proc.returncode == 2, "refused by the run, not before it"
