"""The synthetic-data generator: the contract, determinism, magnitudes, tax codes, and the
consistency of the written files with the model that generated them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from offshoring import taxcode
from offshoring.geo import layout_for_year, read_municipalities
from offshoring.synth import cli_main, generate
from offshoring.synth import outsourcing
from offshoring.synth.census import SIZE_CLASSES, reference_district_flags
from offshoring.synth.dataset import load_config, parse_years, simulate, write_files

SURVEY_COLUMNS = [
    "tax_code", "year", "filing_date", "ateco_2007", "municipality_code", "turnover", "employees",
    "value_added", "wage_costs", "net_income", "roi", "export_share", "credit_access", "market_area",
    "high_value_added", "supplier", "subcontracting_italy", "subcontracting_europe",
    "subcontracting_north_africa", "subcontracting_east_asia", "subcontracting_other",
]
REGION_COLS = ["subcontracting_europe", "subcontracting_north_africa", "subcontracting_east_asia",
               "subcontracting_other"]
MARKETS = {"local", "provincial", "regional", "national", "international"}
SMALL = 1200
SEED = 11


def read_survey_csv(path: Path) -> pl.DataFrame:
    text = path.read_bytes().decode("cp1252")
    return pl.read_csv(text.encode(), separator=";", decimal_comma=True,
                       schema_overrides={"tax_code": pl.Utf8, "ateco_2007": pl.Utf8,
                                         "municipality_code": pl.Utf8, "filing_date": pl.Utf8})


def latest(df: pl.DataFrame) -> pl.DataFrame:
    d = df.with_columns(pl.col("filing_date").str.strptime(pl.Date, "%d/%m/%Y"))
    return d.sort("filing_date").group_by(["tax_code", "year"], maintain_order=True).last()


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_small")
    generate(out, firms=SMALL, seed=SEED, years="2005-2012")
    return out


@pytest.fixture(scope="module")
def truth(small) -> dict:
    return json.loads((small / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def munis() -> pl.DataFrame:
    return read_municipalities()


# ----------------------------------------------------------------------------- contract


def test_files_follow_the_contract(small, truth, munis):
    years = list(range(2005, 2013))
    for y in years:
        raw = (small / "survey" / f"survey_{y}.csv").read_bytes()
        raw.decode("cp1252")
        assert raw.split(b"\n", 1)[0].decode() == ";".join(SURVEY_COLUMNS)
        df = read_survey_csv(small / "survey" / f"survey_{y}.csv")
        assert df.columns == SURVEY_COLUMNS
        assert df["year"].unique().to_list() == [y]
        assert df["filing_date"].str.contains(r"^\d{2}/\d{2}/\d{4}$").all()
        dates = df["filing_date"].str.strptime(pl.Date, "%d/%m/%Y")
        assert dates.min() > dt.date(y, 12, 31)
        for c in ["turnover", "employees", "value_added", "wage_costs", "net_income", "roi", "export_share",
                  "subcontracting_italy", *REGION_COLS]:
            assert df[c].dtype in (pl.Float64, pl.Int64), c
        assert (df["employees"] > 0).all() and (df["turnover"] > 0).all() and (df["value_added"] > 0).all()
        assert df["export_share"].is_between(0, 100).all()
        for c in ["subcontracting_italy", *REGION_COLS, "wage_costs"]:
            assert (df[c] >= 0).all(), c
        for c in ["credit_access", "high_value_added", "supplier"]:
            assert set(df[c].unique().to_list()) <= {0, 1}, c
        assert set(df["market_area"].unique().to_list()) <= MARKETS
        assert df["roi"].null_count() < df.height * 0.02
        # ATECO: division 14 or group 15.20, dots up to 2008
        pat = r"^(14\.\d{2}\.\d{2}|15\.20\.\d{2})$" if y <= 2008 else r"^(14\d{4}|1520\d{2})$"
        assert df["ateco_2007"].str.contains(pat).all(), y
        # municipality codes valid in the year's layout
        valid = set(munis[layout_for_year(y)].to_list())
        assert set(df["municipality_code"].to_list()) <= valid, y
        # decimal comma in the text
        assert re.search(rb";\d+,\d{2};", raw)

    # AIDA export
    aida = pl.read_excel(small / "aida" / "aida_firms.xlsx", infer_schema_length=0)
    want = ["tax_code", "company_name", "province", "ateco_2007"] + [f"turnover_{y}" for y in years] \
        + [f"employees_{y}" for y in years]
    assert aida.columns == want
    assert aida["tax_code"].str.contains(r"^\d{11}$").all()
    assert all(taxcode.has_valid_check(c) for c in aida["tax_code"].to_list())
    assert set(aida["province"].to_list()) <= set(munis["province"].to_list())
    cells = pl.concat([aida[c] for c in want[4:]])
    assert (cells == "n.d.").sum() > 0
    nums = cells.filter(~cells.is_in(["n.d.", "n.s."])).cast(pl.Float64)
    assert (nums > 0).all()

    subs = pl.read_csv((small / "aida" / "aida_subsidiaries.csv").read_bytes().decode("cp1252").encode(),
                       separator=";", decimal_comma=True, schema_overrides={"tax_code": pl.Utf8})
    assert subs.columns == ["tax_code", "subsidiary_name", "country_iso2", "ownership_pct", "first_year", "last_year"]
    assert subs["country_iso2"].str.contains(r"^[A-Z]{2}$").all()
    assert subs["ownership_pct"].is_between(0, 100).all()
    assert (subs["ownership_pct"] == 50.0).any(), "a stake of exactly 50% tests the strict threshold"
    held = subs.filter(pl.col("last_year").is_not_null())
    assert (held["first_year"] <= held["last_year"]).all()
    assert set(subs["tax_code"].to_list()) <= set(aida["tax_code"].to_list())
    assert subs["last_year"].null_count() > 0

    llma = pl.read_csv(small / "reference" / "llma.csv", separator=";", encoding="cp1252",
                       schema_overrides={"municipality_code": pl.Utf8, "llma_code": pl.Utf8})
    assert llma.columns == ["municipality_code", "llma_code", "llma_name"]
    assert sorted(llma["municipality_code"].to_list()) == sorted(munis["municipality_code"].to_list())
    assert 590 <= llma["llma_code"].n_unique() <= 630
    # every area lies inside one province
    prov = llma.join(munis.select("municipality_code", "province"), on="municipality_code")
    assert prov.group_by("llma_code").agg(pl.col("province").n_unique())["province"].max() == 1

    census = pl.read_csv(small / "reference" / "census_employment.csv", separator=";", encoding="cp1252",
                         schema_overrides={"llma_code": pl.Utf8, "ateco_division": pl.Utf8})
    assert census.columns == ["llma_code", "ateco_division", "size_class", "local_units", "employees"]
    assert set(census["size_class"].unique().to_list()) == set(SIZE_CLASSES)
    assert set(census["llma_code"].to_list()) == set(llma["llma_code"].to_list())
    divs = set(census["ateco_division"].to_list())
    assert {f"{d:02d}" for d in range(10, 34)} <= divs and {"41", "47", "62", "86", "96"} <= divs
    assert (census["local_units"] >= 1).all()
    lo = census["size_class"].replace_strict({"0-9": 0, "10-49": 10, "50-249": 50, "250+": 250}, return_dtype=pl.Int64)
    hi = census["size_class"].replace_strict({"0-9": 9, "10-49": 49, "50-249": 249, "250+": 10**9}, return_dtype=pl.Int64)
    assert (census["employees"] >= census["local_units"] * lo).all()
    assert (census["employees"] <= census["local_units"] * hi).all()

    # truth.json
    assert truth["generator"] == "offshoring.synth"
    assert truth["seed"] == SEED and truth["generator_version"]
    names = list(truth["probit"]["params"])
    assert names == list(outsourcing.PROBIT_TERMS) + [f"mean_{v}_lag" for v in outsourcing.RE_VARS] \
        + [f"init_{v}" for v in outsourcing.RE_VARS]
    p = truth["probit"]["params"]
    assert p["y_lag"] == 2.531 and p["y_initial"] == 0.527 and p["market_area_order_lag"] == 0.132
    scale = 17000 / SMALL
    assert p["n_outsourcing_prov_lag"] == pytest.approx(0.018 * scale)
    assert p["n_offshoring_prov_lag"] == pytest.approx(-0.011 * scale)
    assert truth["probit"]["lnsig2u"] == pytest.approx(np.log(truth["probit"]["sigma_u"] ** 2))
    assert truth["cox"]["approximate"] is False
    assert truth["cox"]["hazard_ratios"]["profit"] == pytest.approx(0.643)
    assert truth["counts"]["firms"] == SMALL
    assert set(truth["counts"]["outsourcing_firm_years_by_year"]) == {str(y) for y in years}
    assert len(truth["districts"]["llma_codes"]) == truth["counts"]["district_llmas"] >= 30


def test_same_seed_byte_identical_other_seed_differs(small, tmp_path):
    again = tmp_path / "again"
    generate(again, firms=SMALL, seed=SEED, years="2005-2012")
    assert file_hashes(again) == file_hashes(small)
    other = tmp_path / "other"
    generate(other, firms=SMALL, seed=SEED + 1, years="2005-2012")
    a, b = file_hashes(other), file_hashes(small)
    assert a["survey/survey_2008.csv"] != b["survey/survey_2008.csv"]
    assert a["reference/llma.csv"] == b["reference/llma.csv"]   # the partition has no randomness


def test_identical_across_processes(tmp_path):
    """Hash randomisation (set and dict order) does not leak into the files."""
    import os
    import subprocess
    import sys

    args = ["--firms", "300", "--seed", "4", "--years", "2009-2010"]
    cli_main(["--out", str(tmp_path / "here"), *args])
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "offshoring.synth", "--out", str(tmp_path / "there"), *args],
                   check=True, env=env, capture_output=True)
    assert file_hashes(tmp_path / "here") == file_hashes(tmp_path / "there")


@pytest.mark.parametrize("survey_format,aida_format", [("csv.gz", "csv"), ("parquet", "xlsx")])
def test_other_formats_deterministic(tmp_path, survey_format, aida_format):
    kw = dict(firms=300, seed=5, years="2009-2011", survey_format=survey_format, aida_format=aida_format)
    generate(tmp_path / "a", **kw)
    generate(tmp_path / "b", **kw)
    ha, hb = file_hashes(tmp_path / "a"), file_hashes(tmp_path / "b")
    assert ha == hb
    ext = {"csv.gz": "csv.gz", "parquet": "parquet"}[survey_format]
    assert f"survey/survey_2010.{ext}" in ha
    if survey_format == "parquet":
        df = pl.read_parquet(tmp_path / "a" / "survey" / "survey_2010.parquet")
        assert df.columns == SURVEY_COLUMNS and df["filing_date"].dtype == pl.Date
    if aida_format == "csv":
        text = (tmp_path / "a" / "aida" / "aida_firms.csv").read_bytes().decode("cp1252")
        assert re.search(r";\d{1,3}\.\d{3}\.\d{3};", text), "thousands written with dots"
        assert ";n.d." in text


# ----------------------------------------------------------------------------- tax codes


def test_tax_codes_valid_and_foreign_owners(small, truth):
    codes = pl.concat([read_survey_csv(small / "survey" / f"survey_{y}.csv").select("tax_code", "municipality_code", "ateco_2007")
                       for y in (2010, 2011)]).unique("tax_code")
    personal = [c for c in codes["tax_code"].to_list() if len(c) == 16]
    company = [c for c in codes["tax_code"].to_list() if len(c) == 11]
    assert len(personal) + len(company) == codes.height
    assert personal and company
    assert all(taxcode.is_personal_code(c) and taxcode.has_valid_check(c) for c in personal)
    assert all(taxcode.is_company_code(c) and taxcode.has_valid_check(c) for c in company)
    share_sole = len(personal) / codes.height
    assert 0.2 < share_sole < 0.6
    abroad = codes.filter(pl.col("tax_code").map_elements(lambda c: bool(taxcode.born_abroad(c)), return_dtype=pl.Boolean))
    places = {taxcode.birthplace(c) for c in abroad["tax_code"].to_list()}
    assert "Z210" in places and len(places) >= 3
    # Chinese-born owners of clothing firms around Prato (province code 100)
    prato = abroad.filter(pl.col("municipality_code").str.starts_with("100"))
    assert prato.height > 0
    assert all(taxcode.birthplace(c) == "Z210" for c in prato["tax_code"].to_list()[:5])
    clothing = abroad.filter(pl.col("ateco_2007").str.starts_with("14"))
    assert clothing.height > 0.7 * abroad.height
    assert truth["counts"]["migrant_firms"] > 0


# ----------------------------------------------------------------------------- structure


def test_refilings_crossers_and_code_changes(small, truth):
    all_rows = pl.concat([read_survey_csv(small / "survey" / f"survey_{y}.csv") for y in range(2005, 2013)])
    dup = all_rows.group_by("tax_code", "year").len().filter(pl.col("len") > 1)
    assert dup.height == truth["counts"]["refilings"] > 0
    assert dup["len"].max() == 2
    # never two filings on the same day
    assert all_rows.group_by("tax_code", "year", "filing_date").len()["len"].max() == 1
    last = latest(all_rows)
    ceilings = {int(k): v for k, v in truth["turnover_ceiling"].items()}
    above = last.filter(pl.col("turnover") > pl.col("year").replace_strict(ceilings, return_dtype=pl.Float64))
    assert above.height == truth["counts"]["survey_firm_years_above_ceiling"] > 0
    aida = pl.read_excel(small / "aida" / "aida_firms.xlsx", infer_schema_length=0)
    for code, year in above.select("tax_code", "year").rows()[:10]:
        row = aida.filter(pl.col("tax_code") == code)
        assert row.height == 1, "a firm crossing the ceiling continues in AIDA"
        assert row[f"turnover_{year}"][0] != "n.d."
        assert float(row[f"turnover_{year}"][0]) > ceilings[year]
        later = last.filter((pl.col("tax_code") == code) & (pl.col("year") > year))
        assert later.height == 0
    # the panel is consecutive years per firm (no gaps)
    panel = last.join(above.select("tax_code", "year"), on=["tax_code", "year"], how="anti")
    span = panel.group_by("tax_code").agg(pl.col("year").min().alias("a"), pl.col("year").max().alias("b"), pl.len())
    assert (span["b"] - span["a"] + 1 == span["len"]).all()
    assert span.height == truth["counts"]["firms"]
    assert panel.height == truth["counts"]["firm_years"]
    # municipalities of Fermo, Monza and Barletta change code in 2010
    both = panel.filter(pl.col("year").is_in([2009, 2010])).pivot(on="year", index="tax_code", values="municipality_code")
    both = both.drop_nulls()
    changed = both.filter(pl.col("2009") != pl.col("2010"))
    assert changed.height > 0
    # new provinces (Monza 108, Fermo 109, Barletta 110) and Valmarecchia moved to Rimini (099)
    assert set(changed["2010"].str.slice(0, 3).to_list()) <= {"099", "108", "109", "110"}


def test_census_reveals_the_intended_districts(small, truth):
    census = pl.read_csv(small / "reference" / "census_employment.csv", separator=";", encoding="cp1252",
                         schema_overrides={"llma_code": pl.Utf8, "ateco_division": pl.Utf8})
    flags = reference_district_flags(census)
    found = set(flags.filter(pl.col("district") == 1)["llma_code"].to_list())
    assert found == set(truth["districts"]["llma_codes"])
    by = truth["districts"]["by_llma"]
    specs = {d["specialisation"] for d in by}
    assert {"footwear", "clothing", "other"} <= specs
    names = {d["llma_name"] for d in by}
    assert {"Prato", "Carpi", "Fermo", "Vigevano", "Montebelluna", "Sassuolo"} <= names
    # clear-cut margins: districts far above, the rest far below a manufacturing LQ of 1
    dist = flags.filter(pl.col("district") == 1)
    assert dist["lq_manufacturing"].min() > 2
    assert (dist["sme_share"] > dist["nat_sme_share"] + 0.05).all()


def test_llmas_are_contiguous_groups_inside_provinces():
    import scipy.sparse as sp
    from scipy.sparse import csgraph

    from offshoring.synth.dataset import _geography

    geo = _geography(load_config(), None)
    llma = geo.muni["llma_idx"].to_numpy()
    prov = geo.muni["prov_idx"].to_numpy()
    e = geo.edges
    inside = llma[e[:, 0]] == llma[e[:, 1]]
    n = geo.n
    g = sp.coo_matrix((np.ones(inside.sum()), (e[inside, 0], e[inside, 1])), shape=(n, n))
    ncomp, _ = csgraph.connected_components(g, directed=False)
    assert ncomp == geo.llma.height          # each area is one connected piece
    assert np.all(prov[e[:, 0]] == prov[e[:, 1]])
    assert geo.llma.height == 611
    assert (geo.llma.group_by("province").len()["len"] >= 1).all()
    # most links are real shared boundaries (islands are joined to the nearest municipality)
    assert "touching boundaries" in geo.geometry_note


def test_rerun_replaces_a_previous_delivery(tmp_path):
    generate(tmp_path, firms=200, seed=1, years="2005-2007", survey_format="parquet", aida_format="csv")
    (tmp_path / "notes.txt").write_text("kept")
    generate(tmp_path, firms=200, seed=1, years="2006-2007")
    assert sorted(p.name for p in (tmp_path / "survey").iterdir()) == ["survey_2006.csv", "survey_2007.csv"]
    assert sorted(p.name for p in (tmp_path / "aida").iterdir()) == ["aida_firms.xlsx", "aida_subsidiaries.csv"]
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_small_and_odd_sizes(tmp_path):
    s = generate(tmp_path / "tiny", firms=60, seed=2, years="2010-2011")
    assert s["firms"] == 60
    s = generate(tmp_path / "one", firms=100, seed=2, years="2009")
    assert (tmp_path / "one" / "survey" / "survey_2009.csv").exists()
    with pytest.raises(ValueError):
        generate(tmp_path / "bad", firms=100, years="2009,2011")


def test_written_files_reproduce_the_model_regressors(tmp_path):
    """Rebuild the probit regressors from the files alone and compare with the simulation."""
    cfg = load_config()
    sim = simulate(900, 21, parse_years("2005-2012"), cfg)
    write_files(sim, tmp_path)
    pop, out = sim.pop, sim.outcome
    rows = pl.concat([read_survey_csv(tmp_path / "survey" / f"survey_{y}.csv") for y in sim.years])
    last = latest(rows)
    ceil = dict(zip(sim.years, pop.ceiling.tolist()))
    panel = last.filter(pl.col("turnover") <= pl.col("year").replace_strict(ceil, return_dtype=pl.Float64))
    m = read_municipalities()
    xw = pl.concat([m.select(pl.col(c).alias("municipality_code"), "province") for c in ("code_103", "code_107", "code_110")]).unique()
    panel = panel.join(xw, on="municipality_code", how="left").with_columns(
        (pl.sum_horizontal(*REGION_COLS) > 0).cast(pl.Int64).alias("y"),
    )
    assert panel["province"].null_count() == 0
    counts = panel.group_by("province", "year").agg(pl.col("y").sum().alias("n"))
    lagged = (panel.with_columns((pl.col("year") - 1).alias("prev"))
              .join(counts.rename({"year": "prev"}), on=["province", "prev"], how="left")
              .join(panel.select("tax_code", pl.col("year").alias("prev"), pl.col("y").alias("y_prev")),
                    on=["tax_code", "prev"], how="left")
              .with_columns((pl.col("n") - pl.col("y_prev")).alias("n_out_lag")))
    index = {c: i for i, c in enumerate(pop.tax_code)}
    i = np.array([index[c] for c in lagged["tax_code"].to_list()])
    k = lagged["year"].to_numpy() - sim.years[0]
    assert np.array_equal(lagged["y"].to_numpy(), out.y[i, k])
    # the pipeline divides in DuckDB (IEEE division); polars may multiply by the reciprocal
    vape = lagged["value_added"].to_numpy() / lagged["employees"].to_numpy() / 1000
    assert np.array_equal(vape, pop.cov["va_per_employee_k"][i, k])
    assert np.array_equal(lagged["export_share"].to_numpy() / 100, pop.cov["export_ratio"][i, k])
    est = lagged.filter(pl.col("y_prev").is_not_null())
    ie = np.array([index[c] for c in est["tax_code"].to_list()])
    ke = est["year"].to_numpy() - sim.years[0]
    assert np.array_equal(est["n_out_lag"].to_numpy().astype(float), out.n_out_lag[ie, ke])
    assert len(est) == int((pop.in_panel() & (np.arange(pop.t)[None, :] > pop.first[:, None])).sum())


# ----------------------------------------------------------------------------- magnitudes


def test_default_size_magnitudes(tmp_path):
    """The default dataset (17,000 firms): Table 1 and Table 2 magnitudes. Prints the time."""
    t0 = time.perf_counter()
    summary = generate(tmp_path)
    elapsed = time.perf_counter() - t0
    print(f"\ndefault synthetic dataset written in {elapsed:.1f} s ({summary['timings']})")
    tr = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    tg = tr["targets"]
    m = tr["moments"]
    c = tr["counts"]
    assert c["firms"] == 17000
    assert c["firm_years"] == pytest.approx(117000, rel=0.05)
    assert m["outsourcing_per_year_2007_2012"] == pytest.approx(741, rel=tg["tolerance_rel"])
    for sector, target in tg["outsourcing_by_sector"].items():
        assert m["outsourcing_by_sector_per_year_2007_2012"][sector] == pytest.approx(target, rel=0.2)
    for area, share in tg["outsourcing_macro_share"].items():
        assert abs(m["outsourcing_macro_share_2007_2012"][area] - share) < tg["tolerance_share"], area
    # no drift: every year within 20% of the 2007-2012 mean
    per_year = np.array(list(c["outsourcing_firm_years_by_year"].values()), float)
    assert np.all(np.abs(per_year / per_year.mean() - 1) < 0.2)
    assert m["offshoring_per_year_2007_2012"] == pytest.approx(427, rel=0.1)
    assert m["offshoring_macro_share_2007_2012"]["South"] + m["offshoring_macro_share_2007_2012"]["Islands"] < 0.1
    t1 = m["table1_outsourcing"]
    assert t1["clothing"]["subcontracting_abroad"] == pytest.approx(684464, rel=0.05)
    assert t1["footwear"]["subcontracting_abroad"] == pytest.approx(293064, rel=0.05)
    assert t1["clothing"]["turnover"] == pytest.approx(2333955, rel=0.3)
    assert t1["footwear"]["turnover"] == pytest.approx(2886648, rel=0.3)
    assert t1["clothing"]["export_share"] == pytest.approx(18.35, rel=0.35)
    assert t1["footwear"]["export_share"] == pytest.approx(36.0, rel=0.25)
    assert t1["clothing"]["district_share"] == pytest.approx(0.22, abs=0.07)
    assert t1["footwear"]["district_share"] == pytest.approx(0.47, abs=0.08)
    for s in ("clothing", "footwear"):
        assert t1[s]["all_firms_turnover"] < t1[s]["turnover"]
        assert t1[s]["all_firms_employees"] < t1[s]["employees"]
    shares = {s: t1[s]["region_shares_of_amount"] for s in t1}
    assert shares["clothing"]["east_asia"] > shares["footwear"]["east_asia"]
    assert shares["footwear"]["north_africa"] > shares["clothing"]["north_africa"]
    off = m["table1_offshoring"]
    assert off["clothing"]["subsidiaries_per_firm"] == pytest.approx(2.31, rel=0.15)
    assert off["footwear"]["subsidiaries_per_firm"] == pytest.approx(2.68, rel=0.2)
    assert off["footwear"]["share_of_firms_with_subsidiary_in"]["east_asia"] > \
        off["clothing"]["share_of_firms_with_subsidiary_in"]["east_asia"]
    assert off["clothing"]["share_of_firms_with_subsidiary_in"]["north_africa"] < 0.1
    migrant_share = c["migrant_firms"] / c["firms"]
    assert 0.03 < migrant_share < 0.15


# ----------------------------------------------------------------------------- command


def test_cli(tmp_path, capsys):
    rc = cli_main(["--out", str(tmp_path), "--firms", "300", "--seed", "3", "--years", "2008-2010",
                   "--format", "csv.gz", "--aida-format", "csv"])
    assert rc == 0
    assert (tmp_path / "survey" / "survey_2009.csv.gz").exists()
    assert (tmp_path / "aida" / "aida_firms.csv").exists()
    tr = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert tr["years"] == [2008, 2009, 2010] and tr["seed"] == 3
    out = capsys.readouterr().out
    # the yearly averages are over the years generated, and the line says which
    assert "300 firms" in out and "firms a year (2008-2010)" in out and "2007-2012" not in out
    assert tr["moments"]["window_years"] == "2008-2010"
    assert cli_main(["--out", str(tmp_path / "late"), "--firms", "300", "--years", "2014-2016",
                     "--format", "csv", "--aida-format", "csv"]) == 0
    assert "firms a year (2014-2016)" in capsys.readouterr().out
    assert cli_main(["--out", str(tmp_path / "x"), "--years", "2010-2008x"]) == 2
