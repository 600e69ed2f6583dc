"""Tests of the industrial-district procedure on hand-built census tables."""

from __future__ import annotations

import dataclasses
import json

import polars as pl
import pytest

from offshoring.districts import (
    AREA_TYPES,
    DistrictSettings,
    classify_llmas,
    read_override_list,
    run_district_procedure,
)


def census(spec: dict[str, list[tuple[str, str, int, int]]]) -> pl.DataFrame:
    """{llma: [(division, size_class, local_units, employees), ...]} -> census table."""
    rows = [(llma, d, s, u, e) for llma, items in spec.items() for d, s, u, e in items]
    return pl.DataFrame(
        rows,
        schema={
            "llma_code": pl.Utf8,
            "ateco_division": pl.Utf8,
            "size_class": pl.Utf8,
            "local_units": pl.Int64,
            "employees": pl.Int64,
        },
        orient="row",
    )


def row(table: pl.DataFrame, llma: str) -> dict:
    return table.filter(pl.col("llma_code") == llma).to_dicts()[0]


# A small country (30,000 employees; manufacturing 31%) whose areas have known
# types. 14 = clothing, 15 = leather/footwear, 28 = machinery, 10 = food,
# 47 = retail (consumer services), 62 = IT (business services), 41 = construction.
COUNTRY = {
    # Rest of the country: services-heavy, some large machinery plants.
    "R": [
        ("47", "0-9", 1000, 4000), ("62", "0-9", 1000, 4000), ("41", "0-9", 400, 2000),
        ("28", "250+", 3, 1500), ("28", "50-249", 5, 500), ("28", "10-49", 20, 500),
        ("10", "0-9", 200, 1000), ("14", "0-9", 40, 200), ("15", "0-9", 20, 100),
    ],
    # Clothing district: many small clothing units and a few medium ones.
    "A": [
        ("14", "0-9", 300, 1500), ("14", "50-249", 3, 300),
        ("47", "0-9", 200, 800), ("62", "0-9", 50, 200), ("28", "10-49", 5, 100),
    ],
    # Large-firm machinery area: two plants of 250+ dominate manufacturing.
    "B": [
        ("28", "250+", 2, 3000), ("28", "10-49", 10, 200),
        ("47", "0-9", 300, 1000), ("62", "0-9", 100, 500),
    ],
    # Service area.
    "C": [("62", "0-9", 1000, 5000), ("47", "0-9", 600, 3000), ("10", "0-9", 40, 200)],
    # Leather area whose dominant group is one medium unit (120) + small units (80).
    "D": [("15", "50-249", 1, 120), ("15", "0-9", 20, 80), ("47", "0-9", 20, 100), ("62", "0-9", 10, 50)],
    # No manufacturing at all.
    "F": [("47", "0-9", 10, 50)],
}


@pytest.fixture(scope="module")
def country() -> pl.DataFrame:
    return census(COUNTRY)


@pytest.fixture(scope="module")
def default_result(country):
    return run_district_procedure(country)


# --------------------------------------------------------------- indices ----


def test_indices_by_hand():
    # Powers of two so every ratio is exact. National: 256 employees, 64 in
    # manufacturing (share 1/4), 128 in retail, 64 in IT.
    t = classify_llmas(
        census({
            "X": [("14", "0-9", 8, 64), ("47", "0-9", 8, 64)],
            "Y": [("47", "0-9", 8, 64), ("62", "0-9", 8, 64)],
        })
    )
    x = row(t, "X")
    assert x["employees_total"] == 128 and x["employees_manufacturing"] == 64
    assert x["manufacturing_share"] == 0.5
    assert x["lq_manufacturing"] == 2.0
    assert x["prevalence_manufacturing"] == 32.0  # 64 - 128 * 1/4
    assert x["lq_consumer_services"] == 1.0 and x["prevalence_consumer_services"] == 0.0
    assert x["lq_business_services"] == 0.0 and x["prevalence_business_services"] == -32.0
    assert x["manufacturing_area"] is True
    assert x["size_lq_small"] == 1.0 and x["size_share_small"] == 1.0
    assert x["size_lq_large"] is None  # no large units anywhere: undefined LQ
    assert x["sme_share"] == 1.0 and x["sme_area"] is True
    assert x["dominant_group"] == "textiles_clothing"
    assert x["dominant_lq"] == 2.0  # (64/128) / (64/256)
    assert x["dominant_prevalence"] == 32.0
    assert x["dominant_employees"] == 64 and x["dominant_share_of_manufacturing"] == 1.0
    assert x["dominant_sme_share"] == 1.0 and x["dominant_units_small"] == 8
    assert x["n_specialised_groups"] == 1 and x["dominant_tie"] is False
    assert (x["district"], x["area_type"], x["district_source"]) == (1, "district", "procedure")
    y = row(t, "Y")
    assert y["employees_manufacturing"] == 0 and y["lq_manufacturing"] == 0.0
    assert (y["district"], y["area_type"], y["dominant_group"]) == (0, "non_manufacturing", None)


def test_prevalence_variants_share_and_lq():
    spec = {
        "X": [("14", "0-9", 8, 64), ("47", "0-9", 8, 64)],
        "Y": [("47", "0-9", 8, 64), ("62", "0-9", 8, 64)],
    }
    share = row(classify_llmas(census(spec), {"prevalence_index": "share_difference"}), "X")
    assert share["prevalence_manufacturing"] == 0.25  # 1/2 - 1/4
    lq = row(classify_llmas(census(spec), {"prevalence_index": "location_quotient"}), "X")
    assert lq["prevalence_manufacturing"] == 2.0


# --------------------------------------------------------- classification ----


def test_known_area_types(default_result):
    t = default_result.table
    got = {r["llma_code"]: (r["district"], r["area_type"], r["dominant_group"]) for r in t.iter_rows(named=True)}
    assert got == {
        "A": (1, "district", "textiles_clothing"),
        "B": (0, "manufacturing_large_firm", "mechanical"),
        "C": (0, "non_manufacturing", None),
        "D": (0, "manufacturing_sme_non_district", "leather_footwear"),
        "F": (0, "non_manufacturing", None),
        "R": (0, "non_manufacturing", None),
    }
    assert t["district"].dtype == pl.Int8
    assert set(t["area_type"].to_list()) <= set(AREA_TYPES)
    assert t["llma_code"].to_list() == sorted(t["llma_code"].to_list())


def test_district_a_indices(default_result):
    a = row(default_result.table, "A")
    # 1,900 of 2,900 employees in manufacturing vs 9,300 of 30,000 nationally.
    assert a["lq_manufacturing"] == pytest.approx((1900 / 2900) / (9300 / 30000))
    assert a["sme_area"] is True
    assert a["size_lq_small"] > a["size_lq_large"] and a["size_lq_large"] == 0.0
    assert a["dominant_sme_share"] == 1.0
    assert a["single_medium_exception"] is False


def test_large_firm_area(default_result):
    b = row(default_result.table, "B")
    assert b["manufacturing_area"] is True and b["sme_area"] is False
    assert b["size_lq_large"] > max(b["size_lq_small"], b["size_lq_medium"])
    assert b["dominant_sme_share"] == pytest.approx(200 / 3200)
    assert b["dominant_sme"] is False and b["large_firm_district_features"] is False


def test_non_manufacturing_areas(default_result):
    t = default_result.table
    c = row(t, "C")
    assert c["lq_manufacturing"] < 1 and c["manufacturing_area"] is False
    f = row(t, "F")
    assert f["employees_manufacturing"] == 0 and f["manufacturing_share"] == 0.0
    assert f["sme_area"] is False and f["dominant_group"] is None and f["n_specialised_groups"] == 0


def test_single_medium_exception(default_result):
    d = row(default_result.table, "D")
    assert d["manufacturing_area"] and d["sme_area"]
    assert d["dominant_units_medium"] == 1 and d["dominant_units_large"] == 0
    assert (d["dominant_employees_medium"], d["dominant_employees_small"]) == (120, 80)
    assert d["dominant_sme_share"] == 1.0  # passes the 50% test ...
    assert d["single_medium_exception"] is True  # ... but rests on one medium unit
    assert d["district"] == 0


def test_exception_switched_off_flips_outcome(country):
    d = row(classify_llmas(country, {"single_medium_exception": False}), "D")
    assert d["single_medium_exception"] is False
    assert (d["district"], d["area_type"]) == (1, "district")


@pytest.mark.parametrize(
    "small_emp, medium_units, district",
    [
        (80, 1, 0),  # one medium unit employing more than the small ones: exception
        (120, 1, 1),  # equal: "more than" is not met, no exception
        (130, 1, 1),  # small units employ more: no exception
        (80, 2, 1),  # two medium units: the exception is about a single one
    ],
)
def test_exception_reading_on_aggregates(small_emp, medium_units, district):
    spec = dict(COUNTRY)
    spec["D"] = [
        ("15", "50-249", medium_units, 120), ("15", "0-9", 20, small_emp),
        ("47", "0-9", 20, 100), ("62", "0-9", 10, 50),
    ]
    d = row(classify_llmas(census(spec)), "D")
    assert d["manufacturing_area"] and d["sme_area"] and d["dominant_group"] == "leather_footwear"
    assert d["district"] == district


def test_exception_ratio_setting(country):
    # Exception fires when medium > ratio * small: 120 > 1.6 * 80 is false.
    d = row(classify_llmas(country, {"single_medium_employment_ratio": 1.6}), "D")
    assert d["district"] == 1


def test_zero_manufacturing_country():
    t = classify_llmas(census({"P": [("47", "0-9", 3, 10)], "Q": [("62", "10-49", 1, 20)]}))
    assert t["area_type"].to_list() == ["non_manufacturing", "non_manufacturing"]
    assert t["lq_manufacturing"].to_list() == [None, None]  # national share 0: undefined
    assert t["district"].to_list() == [0, 0]


# ------------------------------------------------------------------ ties ----

TIE = {
    # Textiles and leather have the same national (150) and local (100)
    # employment in T: identical LQ and prevalence, and equal employees.
    "T": [("14", "0-9", 20, 100), ("15", "0-9", 20, 100), ("47", "0-9", 20, 100)],
    "R": [("14", "0-9", 10, 50), ("15", "0-9", 10, 50), ("47", "0-9", 200, 1000), ("62", "0-9", 200, 1000)],
}


def test_exact_tie_goes_to_config_order():
    t = row(classify_llmas(census(TIE)), "T")
    assert t["dominant_tie"] is True and t["n_specialised_groups"] == 2
    assert t["dominant_group"] == "textiles_clothing"  # first in industry_groups
    assert t["district"] == 1


def test_tie_follows_group_order_setting():
    groups = dict(DistrictSettings().industry_groups)
    reordered = {"leather_footwear": groups.pop("leather_footwear"), **groups}
    t = row(classify_llmas(census(TIE), {"industry_groups": reordered}), "T")
    assert t["dominant_tie"] is True and t["dominant_group"] == "leather_footwear"


def test_lq_tie_broken_by_employees_then_order():
    # National 15 = 2 x national 14 and local 15 = 2 x local 14: the group LQs
    # tie (up to rounding), employees differ.
    spec = {
        "T": [("14", "0-9", 10, 100), ("15", "0-9", 20, 200), ("47", "0-9", 30, 300)],
        "R": [("14", "0-9", 10, 100), ("15", "0-9", 20, 200), ("47", "0-9", 300, 3000), ("62", "0-9", 300, 3000)],
    }
    by_emp = row(classify_llmas(census(spec), {"dominant_selection": "lq"}), "T")
    assert by_emp["dominant_tie"] is True and by_emp["dominant_group"] == "leather_footwear"
    by_order = row(
        classify_llmas(census(spec), {"dominant_selection": "lq", "dominant_tie_break": "order"}), "T"
    )
    assert by_order["dominant_group"] == "textiles_clothing"
    # With the default (prevalence) there is no tie: leather's excess is larger.
    default = row(classify_llmas(census(spec)), "T")
    assert default["dominant_tie"] is False and default["dominant_group"] == "leather_footwear"


def test_no_tie_when_values_differ(default_result):
    assert default_result.table["dominant_tie"].sum() == 0


# ------------------------------------------------------ settings flip ----

BOUNDARY = {
    "X": [("14", "0-9", 8, 64), ("47", "0-9", 8, 64)],  # manufacturing LQ exactly 2.0
    "Y": [("47", "0-9", 8, 64), ("62", "0-9", 8, 64)],
}


def test_threshold_and_strictness_flip_manufacturing():
    assert row(classify_llmas(census(BOUNDARY), {"manufacturing_lq_threshold": 1.5}), "X")["district"] == 1
    at = row(classify_llmas(census(BOUNDARY), {"manufacturing_lq_threshold": 2.0}), "X")
    assert (at["manufacturing_area"], at["area_type"]) == (False, "non_manufacturing")
    weak = row(
        classify_llmas(census(BOUNDARY), {"manufacturing_lq_threshold": 2.0, "strict_inequalities": False}), "X"
    )
    assert weak["manufacturing_area"] is True and weak["district"] == 1


SHARE = {
    # G: textiles with 60 small-unit and 40 large-unit employees (SME share 0.6);
    # the country's manufacturing is dominated by large units, so G is an SME area.
    "G": [("14", "0-9", 20, 60), ("14", "250+", 1, 40), ("47", "0-9", 10, 50)],
    "R": [("28", "250+", 4, 1000), ("28", "10-49", 10, 200), ("47", "0-9", 500, 3000), ("62", "0-9", 500, 3000)],
}


@pytest.mark.parametrize(
    "threshold, strict, district",
    [(0.5, True, 1), (0.6, True, 0), (0.6, False, 1), (0.7, False, 0)],
)
def test_dominant_sme_share_threshold(threshold, strict, district):
    g = row(
        classify_llmas(
            census(SHARE), {"dominant_sme_share_threshold": threshold, "strict_inequalities": strict}
        ),
        "G",
    )
    assert g["sme_area"] is True and g["dominant_sme_share"] == 0.6
    assert g["district"] == district
    if not district:
        assert g["area_type"] == "manufacturing_sme_non_district"


def test_dominant_sme_rule_size_lq_variant():
    # G holds all the country's textiles, so inside the group every size-class
    # LQ is 1 (0.6/0.6 small, 0.4/0.4 large): a tie, and the strict comparison
    # denies SME status, while the 50% share rule grants it.
    g = row(classify_llmas(census(SHARE), {"dominant_sme_rule": "size_lq_max"}), "G")
    assert g["dominant_size_lq_small"] == pytest.approx(1.0)
    assert g["dominant_size_lq_large"] == pytest.approx(1.0)
    assert g["dominant_sme"] is False and g["district"] == 0


def test_sme_area_rule_istat_1997_variant(country):
    # SME share of manufacturing above the national share (sme_lq > 1).
    t = classify_llmas(country, {"sme_area_rule": "sme_lq"})
    assert row(t, "B")["sme_lq"] < 1 and row(t, "B")["area_type"] == "manufacturing_large_firm"
    assert row(t, "A")["sme_lq"] > 1 and row(t, "A")["district"] == 1


def test_min_employees_of_dominant_group(country):
    a = row(classify_llmas(country, {"dominant_min_employees": 2000}), "A")
    assert a["dominant_employees"] == 1800
    assert (a["district"], a["area_type"]) == (0, "manufacturing_sme_non_district")


def test_group_mapping_setting_merges_clothing_and_footwear(country):
    groups = dict(DistrictSettings().industry_groups)
    groups.pop("leather_footwear")
    groups["textiles_clothing"] = ["13", "14", "15"]
    t = classify_llmas(country, {"industry_groups": groups})
    assert row(t, "D")["dominant_group"] == "textiles_clothing"


def test_dominant_scope_all(country):
    # R is not a manufacturing area, but food is specialised there.
    assert row(classify_llmas(country), "R")["dominant_group"] is None
    r = row(classify_llmas(country, {"dominant_scope": "all"}), "R")
    assert r["dominant_group"] == "food" and r["district"] == 0


# -------------------------------------------------------------- override ----


def test_override_replaces_flags(country):
    t = classify_llmas(country, override=["B"])
    a, b, c = row(t, "A"), row(t, "B"), row(t, "C")
    assert (b["district"], b["district_computed"], b["area_type"]) == (1, 0, "district_by_override")
    assert (a["district"], a["district_computed"], a["area_type"]) == (0, 1, "non_district_by_override")
    assert (c["district"], c["area_type"]) == (0, "non_manufacturing")
    assert set(t["district_source"].to_list()) == {"override"}
    assert a["area_type_computed"] == "district"


def test_override_union(country):
    t = classify_llmas(country, {"override_mode": "union"}, override=["B"])
    assert row(t, "A")["district"] == 1 and row(t, "A")["district_source"] == "procedure"
    assert row(t, "B")["district"] == 1 and row(t, "B")["district_source"] == "override"
    assert row(t, "C")["district_source"] == "procedure"


def test_override_unknown_codes(country):
    with pytest.raises(ValueError, match="absent from the census"):
        classify_llmas(country, override=["A", "ZZ"])
    res = run_district_procedure(country, {"override_unknown": "ignore"}, override=["A", "ZZ"])
    assert res.metadata["override"]["unknown_codes"] == ["ZZ"]
    assert res.table["district"].sum() == 1


def test_override_file(country, tmp_path):
    plain = tmp_path / "districts.txt"
    plain.write_text("# ISTAT districts\nB\n\nD\n", encoding="utf-8")
    assert read_override_list(plain) == ["B", "D"]
    with_header = tmp_path / "districts.csv"
    with_header.write_text("name;llma_code\nfoo;B\nbar;D\n", encoding="utf-8")
    assert read_override_list(with_header) == ["B", "D"]
    t = classify_llmas(country, {"override_file": str(with_header)})
    assert sorted(t.filter(pl.col("district") == 1)["llma_code"].to_list()) == ["B", "D"]


def test_empty_override_list_means_no_districts(country):
    t = classify_llmas(country, override=[])
    assert t["district"].sum() == 0 and row(t, "A")["area_type"] == "non_district_by_override"


# ----------------------------------------------------------------- input ----


def test_input_normalisation(country):
    # Integer-like division codes are zero-padded; duplicates are summed;
    # agriculture is dropped but its LLMA still gets a row.
    extra = pl.DataFrame(
        {
            "llma_code": ["A", "A", "H"],
            "ateco_division": ["5", "14", "01"],
            "size_class": ["0-9", "0-9", "0-9"],
            "local_units": [1, 0, 5],
            "employees": [10, 0, 30],
        }
    )
    t = classify_llmas(pl.concat([country, extra]))
    assert row(t, "A")["employees_total"] == 2910
    h = row(t, "H")
    assert (h["employees_total"], h["area_type"], h["district"]) == (0, "non_manufacturing", 0)


def test_unmapped_division_policies(country):
    extra = pl.DataFrame(
        {"llma_code": ["C"], "ateco_division": ["99"], "size_class": ["0-9"], "local_units": [1], "employees": [100]}
    )
    df = pl.concat([country, extra])
    assert row(classify_llmas(df), "C")["employees_total"] == 8300  # counted as 'other'
    assert row(classify_llmas(df, {"unmapped_divisions": "drop"}), "C")["employees_total"] == 8200
    with pytest.raises(ValueError, match="in no sector"):
        classify_llmas(df, {"unmapped_divisions": "error"})


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df: df.drop("employees"), "lacks columns"),
        (lambda df: df.with_columns(pl.lit("1-9").alias("size_class")), "size classes"),
        (lambda df: df.with_columns(pl.lit(-1).alias("employees")), "negative"),
        (lambda df: df.with_columns(pl.lit(None, dtype=pl.Int64).alias("local_units")), "nulls"),
    ],
)
def test_bad_input(country, mutate, message):
    with pytest.raises(ValueError, match=message):
        classify_llmas(mutate(country))


# -------------------------------------------------------------- settings ----


def test_yaml_matches_code_defaults():
    from offshoring.settings import PROJECT_ROOT

    assert DistrictSettings.from_yaml(PROJECT_ROOT / "config" / "districts.yaml") == DistrictSettings()
    from offshoring.spec import load_study_spec

    assert load_study_spec().districts == DistrictSettings()


def test_yaml_partial_override(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("dominant_sme_share_threshold: 0.6\nsingle_medium_exception: false\n", encoding="utf-8")
    s = DistrictSettings.from_yaml(p)
    assert s.dominant_sme_share_threshold == 0.6 and s.single_medium_exception is False
    assert s.industry_groups == DistrictSettings().industry_groups


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"dominant_sme_thresold": 0.5}, "unknown"),
        ({"prevalence_index": "ratio"}, "expected one of"),
        ({"industry_groups": {"a": ["14"], "b": ["14", "15"]}}, "both"),
        ({"industry_groups": {"a": ["14", "47"]}}, "non-manufacturing"),
        ({"sme_size_groups": ["small", "medium", "large"]}, "non-SME"),
        ({"competitor_sectors": ["manufacturing"]}, "competitor"),
    ],
)
def test_invalid_settings(bad, message):
    with pytest.raises(ValueError, match=message):
        DistrictSettings.from_dict(bad)


def test_metadata_records_every_setting(default_result):
    meta = default_result.metadata
    json.dumps(meta)  # serialisable
    names = {f.name for f in dataclasses.fields(DistrictSettings)}
    assert names <= set(meta["settings"])
    assert meta["settings"]["method"]
    assert meta["n_llmas"] == 6 and meta["n_districts"] == 1
    assert meta["area_types"]["non_manufacturing"] == 3
    assert meta["districts_by_group"] == {"textiles_clothing": 1}
    assert meta["n_single_medium_exceptions"] == 1
    assert meta["override"] == {"used": False}


def test_settings_object_and_dict_agree(country):
    s = DistrictSettings(single_medium_exception=False)
    assert classify_llmas(country, s).equals(classify_llmas(country, {"single_medium_exception": False}))


def test_many_llmas_one_row_each():
    import numpy as np

    rng = np.random.default_rng(1)
    n, divs, sizes = 611, ["10", "14", "15", "28", "47", "62", "41"], ["0-9", "10-49", "50-249", "250+"]
    codes = [f"{i:03d}" for i in range(n) for _ in divs for _ in sizes]
    units = rng.poisson(2, len(codes))
    df = pl.DataFrame(
        {
            "llma_code": codes,
            "ateco_division": [d for _ in range(n) for d in divs for _ in sizes],
            "size_class": [s for _ in range(n) for _ in divs for s in sizes],
            "local_units": units,
            "employees": units * rng.integers(1, 40, len(codes)),
        }
    )
    t = classify_llmas(df)
    assert t.height == n and t["llma_code"].n_unique() == n
    assert t.filter(pl.col("district") == 1)["dominant_group"].null_count() == 0
