"""Disclosure control on small tables built to break each rule."""

from __future__ import annotations

import pytest

from offshoring.reports import render, sdc
from offshoring.reports.sdc import (
    BLANK_CELL,
    DOMINANCE,
    FREQUENCY,
    MAGNITUDE,
    SECONDARY,
    THRESHOLD,
    Cell,
    CellTable,
    Constraint,
    DisclosureError,
    Rules,
    assert_safe,
    protect,
    recoverable_cells,
    with_margins,
)

RULES = Rules(min_firms=3, dominance_share=0.85, marker="x")


def counts_table(name: str, grid: dict[str, dict[str, int]]) -> CellTable:
    rows = list(grid)
    cols = list(next(iter(grid.values())))
    cells = {(r, c): Cell(float(v), FREQUENCY) for r in rows for c, v in grid[r].items()}
    return CellTable(name, rows, cols, cells)


def test_rules_come_from_the_specification_only():
    from offshoring.spec import load_study_spec

    part = load_study_spec().reports.sdc
    rules = Rules.from_spec(part)
    assert (rules.min_firms, rules.dominance_share, rules.marker) == (
        part.min_firms, part.dominance_share, part.marker)
    assert Rules.from_spec({"min_firms": 5, "dominance_share": 0.9, "marker": "c"}).min_firms == 5
    # no value is written in code: every rule must be given
    with pytest.raises(TypeError):
        Rules()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="dominance_share"):
        Rules.from_spec({"min_firms": 5})
    t = counts_table("t", {"r": {"a": 1}})
    with pytest.raises(TypeError):
        protect(t)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        assert_safe(t)  # a raw table needs the rules


def test_violations_lists_every_unsafe_cell_without_values():
    t = CellTable(
        "t", ["n", "money"], ["a", "b", "c"],
        {
            ("n", "a"): Cell(1.0, FREQUENCY), ("n", "b"): Cell(2.0, FREQUENCY),
            ("n", "c"): Cell(7.0, FREQUENCY),
            ("money", "a"): Cell(5e5, MAGNITUDE, n_firms=4, total=1e6, max_contrib=9.5e5),
            ("money", "b"): Cell(5e5, MAGNITUDE, n_firms=4, total=1e6, max_contrib=3e5),
            ("money", "c"): BLANK_CELL,
        },
    )
    found = sdc.violations(t, RULES)
    assert [(v.cell, v.rule) for v in found] == [
        (("n", "a"), THRESHOLD), (("n", "b"), THRESHOLD), (("money", "a"), DOMINANCE)]
    assert sdc.count_by_rule(found) == {THRESHOLD: 2, DOMINANCE: 1}
    assert not any("950" in v.describe() or "500" in v.describe() for v in found)
    assert sdc.violations(protect(t, RULES)) == []


def test_threshold_rule_suppresses_cells_of_fewer_than_three_firms():
    t = CellTable(
        "t",
        ["a"],
        ["one", "two", "three", "zero", "mean2"],
        {
            ("a", "one"): Cell(1.0, FREQUENCY),
            ("a", "two"): Cell(2.0, FREQUENCY),
            ("a", "three"): Cell(3.0, FREQUENCY),
            ("a", "zero"): Cell(0.0, FREQUENCY),
            # a share or mean: the rule reads the firm count, not the value
            ("a", "mean2"): Cell(57.3, FREQUENCY, n_firms=2),
        },
    )
    p = protect(t, RULES)
    assert p.suppressed == {("a", "one"): THRESHOLD, ("a", "two"): THRESHOLD, ("a", "mean2"): THRESHOLD}
    assert p.published_value("a", "three") == 3.0
    assert p.published_value("a", "zero") == 0.0  # a zero count reveals no firm
    assert p.published_value("a", "one") is None
    assert_safe(p)


def test_dominance_rule_suppresses_magnitude_cells_with_a_dominant_firm():
    t = CellTable(
        "t",
        ["turnover"],
        ["dominant", "at_limit", "spread", "small"],
        {
            ("turnover", "dominant"): Cell(1e6, MAGNITUDE, n_firms=10, total=1e7, max_contrib=8.6e6),
            ("turnover", "at_limit"): Cell(1e6, MAGNITUDE, n_firms=10, total=1e7, max_contrib=8.5e6),
            ("turnover", "spread"): Cell(1e6, MAGNITUDE, n_firms=10, total=1e7, max_contrib=2e6),
            ("turnover", "small"): Cell(1e6, MAGNITUDE, n_firms=2, total=2e6, max_contrib=1e6),
        },
    )
    p = protect(t, RULES)
    assert p.suppressed == {
        ("turnover", "dominant"): DOMINANCE,
        ("turnover", "small"): THRESHOLD,
    }
    # a frequency cell is never judged by dominance
    f = CellTable("f", ["r"], ["c"], {("r", "c"): Cell(5.0, FREQUENCY, n_firms=5, total=10, max_contrib=9.9)})
    assert protect(f, RULES).suppressed == {}


def test_magnitude_cell_without_contributions_cannot_be_checked():
    t = CellTable("t", ["r"], ["c"], {("r", "c"): Cell(10.0, MAGNITUDE, n_firms=10)})
    with pytest.raises(ValueError, match="max_contrib"):
        protect(t, RULES)


def test_secondary_suppression_with_margins_leaves_nothing_recoverable():
    t = with_margins(
        counts_table(
            "grid",
            {
                "r1": {"a": 1, "b": 5, "c": 7},
                "r2": {"a": 4, "b": 6, "c": 9},
                "r3": {"a": 8, "b": 10, "c": 12},
            },
        )
    )
    assert t.cell("Total", "Total").value == 62
    p = protect(t, RULES)
    # the lone small cell, then the smallest complements: a rectangle
    assert p.suppressed == {
        ("r1", "a"): THRESHOLD,
        ("r1", "b"): SECONDARY,
        ("r2", "a"): SECONDARY,
        ("r2", "b"): SECONDARY,
    }
    assert recoverable_cells(t, p.suppressed) == []
    assert_safe(p)


def test_complement_is_the_smallest_nonzero_cell_for_an_external_total():
    # A map panel: provinces add up to a total published in the panel title.
    cells = {
        ("p1", "n"): Cell(2.0, FREQUENCY),
        ("p2", "n"): Cell(0.0, FREQUENCY),
        ("p3", "n"): Cell(9.0, FREQUENCY),
        ("p4", "n"): Cell(4.0, FREQUENCY),
    }
    t = CellTable("map", ["p1", "p2", "p3", "p4"], ["n"], cells,
                  [Constraint(tuple((p, "n") for p in ["p1", "p2", "p3", "p4"]), None, "N")])
    p = protect(t, RULES)
    assert p.suppressed == {("p1", "n"): THRESHOLD, ("p4", "n"): SECONDARY}


def test_chained_constraints_are_caught_beyond_lone_cells():
    # Every constraint holds two suppressed cells, so no cell is alone, yet
    # x + y, y + z and x + z published pin down x, y and z.
    rows = ["x", "y", "z", "w"]
    cells = {(r, "v"): Cell(5.0, FREQUENCY) for r in rows}
    cons = [
        Constraint((("x", "v"), ("y", "v")), None, "x+y"),
        Constraint((("y", "v"), ("z", "v")), None, "y+z"),
        Constraint((("x", "v"), ("z", "v")), None, "x+z"),
    ]
    t = CellTable("chain", rows, ["v"], cells, cons)
    supp = {("x", "v"), ("y", "v"), ("z", "v")}
    # three equations, three unknowns: all determined although no cell is alone
    assert set(recoverable_cells(t, supp)) == supp
    fake = sdc.ProtectedTable(t, RULES, {k: THRESHOLD for k in supp})
    with pytest.raises(DisclosureError) as err:
        assert_safe(fake)
    assert err.value.rule == SECONDARY


def test_assert_safe_names_the_cell_and_the_rule():
    t = counts_table("raw", {"r1": {"a": 10, "b": 2}})
    with pytest.raises(DisclosureError) as err:
        assert_safe(t, RULES)
    assert err.value.cell == ("r1", "b")
    assert err.value.rule == THRESHOLD
    assert "'raw'" in str(err.value) and "'b'" in str(err.value) and "threshold" in str(err.value)

    m = CellTable("money", ["turnover"], ["c"],
                  {("turnover", "c"): Cell(5.0, MAGNITUDE, n_firms=4, total=100.0, max_contrib=90.0)})
    with pytest.raises(DisclosureError, match="dominance"):
        assert_safe(m, RULES)


def test_assert_safe_fails_when_a_secondary_suppression_is_dropped():
    t = with_margins(counts_table("grid", {"r1": {"a": 1, "b": 5}, "r2": {"a": 6, "b": 7}}))
    p = protect(t, RULES)
    assert_safe(p)
    tampered = sdc.ProtectedTable(
        t, RULES, {k: v for k, v in p.suppressed.items() if v != SECONDARY}
    )
    with pytest.raises(DisclosureError) as err:
        assert_safe(tampered)
    assert err.value.rule == SECONDARY
    assert err.value.cell == ("r1", "a")


def test_assert_safe_with_stricter_rules_fails():
    p = protect(counts_table("t", {"r": {"a": 3, "b": 4, "c": 10}}), RULES)
    assert_safe(p)
    with pytest.raises(DisclosureError, match="fewer than 5"):
        assert_safe(p, Rules(min_firms=5, dominance_share=0.85, marker="x"))


def test_suppressed_values_never_reach_the_written_files(tmp_path):
    secret = 987654.321
    t = CellTable(
        "secret_table",
        ["turnover", "blank"],
        ["a", "b"],
        {
            ("turnover", "a"): Cell(secret, MAGNITUDE, n_firms=5, total=5e6, max_contrib=4.9e6),
            ("turnover", "b"): Cell(1234.0, MAGNITUDE, n_firms=5, total=5e6, max_contrib=1e6),
            ("blank", "a"): BLANK_CELL,
            ("blank", "b"): Cell(2.0, FREQUENCY, n_firms=10),
        },
    )
    p = protect(t, RULES)
    assert p.suppressed == {("turnover", "a"): DOMINANCE}
    display = render.DisplayTable(
        name="secret_table",
        title="Secret",
        header=[[("A", 1), ("B", 1)]],
        rows=render.rows_from_protected(p, [("turnover", "Turnover"), ("blank", "Blank")]),
        sdc=p,
    )
    record = render.write_table(display, tmp_path)
    for f in record.files + [record.sidecar]:
        text = (tmp_path / f).read_text()
        assert "987654" not in text.replace(",", "") and "987,654" not in text
    md = (tmp_path / "secret_table.md").read_text()
    assert "| Turnover | x | 1,234.00 |" in md
    assert "| Blank | – | 2.00 |" in md  # does not apply
    csv_text = (tmp_path / "secret_table.csv").read_text()
    assert "Turnover,x,1234\n" in csv_text


def test_writers_refuse_unprotected_or_unsafe_tables(tmp_path):
    plain = render.DisplayTable("plain", "Plain", [[("A", 1)]], [render.DisplayRow("r", ["1"])])
    with pytest.raises(ValueError, match="disclosure control"):
        render.write_table(plain, tmp_path)
    raw = counts_table("raw", {"r": {"a": 1}})
    unsafe = sdc.ProtectedTable(raw, RULES, {})  # claims protection, suppresses nothing
    plain.sdc = unsafe
    with pytest.raises(DisclosureError):
        render.write_table(plain, tmp_path)
    assert list(tmp_path.iterdir()) == []
