"""The Dagster UI in a real browser.

A small synthetic dataset is run through the pipeline (in a subprocess, on a temporary
instance), then `dagster dev` serves that instance on 127.0.0.1 and headless Chromium
(Debian's, driven by Playwright): the asset graph shows the five layers, a click on
Materialize runs `municipalities` to success, and the `outsourcing_probit` page shows
Table 2's coefficients as rendered Markdown. Screenshots go to test-output/ui/.

Needs the `chromium` Debian package and the `playwright` Python package (no
`playwright install`: the browser is the system one). `bash scripts/setup.sh --test`
(what .ci/run runs) installs both; without them the test fails rather than skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ui_helpers import ROOT, DagsterDev, chromium_path, launch_chromium

OUT = ROOT / "test-output" / "ui"
GROUPS = ["raw", "panel", "geography", "models", "reports"]
MATERIALIZE = "municipalities"  # a cheap root asset: one bundled CSV, three checks
MODEL = "outsourcing_probit"
# seed 3 with 600 firms makes a Table 2 dummy predict perfectly and the probit refuses
# to fit; seed 1 fits (and is as quick)
FIRMS, SEED = 600, 1

PREPARE = """
import json, sys
from pathlib import Path
import dagster as dg
from offshoring.synth import generate
from orchestration.pipeline import run_everything

raw = Path(sys.argv[1])
generate(raw, firms=int(sys.argv[2]), seed=int(sys.argv[3]))
with dg.DagsterInstance.get() as instance:
    ok = run_everything(raw, instance=instance)
    event = instance.get_latest_materialization_event(dg.AssetKey("outsourcing_probit"))
    meta = event.asset_materialization.metadata if event else {}
    out = {"ok": ok, "coefficients": meta["coefficients"].value if "coefficients" in meta else None,
           "nobs": meta["nobs"].value if "nobs" in meta else None}
print("PROBIT_METADATA " + json.dumps(out))
"""


def _markdown_rows(md: str) -> list[list[str]]:
    # cells as the page shows them: inline code loses its backticks
    rows = [[c.strip().strip("`") for c in line.strip().strip("|").split("|")] for line in md.splitlines()
            if line.strip().startswith("|")]
    return [r for r in rows if not all(set(c) <= set("-:") for c in r)]


def _prepare(root: Path) -> tuple[dict[str, str], dict]:
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "orchestration" / "instance" / "dagster.yaml", home / "dagster.yaml")
    # the "Join the Dagster community" dialog is shown until this file exists
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "OFFSHORING_RAW_DIR": str(root / "raw"),
           "OFFSHORING_DB": str(root / "warehouse.duckdb"),
           "OFFSHORING_REPORTS_DIR": str(root / "reports"),
           # the generator's files, unchanged: the demo mode (the UI's `offshoring ui --synthetic`)
           "OFFSHORING_SYNTHETIC": "1"}
    done = subprocess.run([sys.executable, "-c", PREPARE, str(root / "raw"), str(FIRMS), str(SEED)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    tail = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, tail
    line = next((l for l in done.stdout.splitlines() if l.startswith("PROBIT_METADATA ")), None)
    assert line, tail
    probit = json.loads(line.split(" ", 1)[1])
    assert probit["ok"] and probit["coefficients"], f"the pipeline run failed:\n{tail}"
    return env, probit


def _require_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package `playwright` is missing: pip install -r requirements.lock "
                    "(bash scripts/setup.sh --test)")
    if chromium_path() is None:
        pytest.fail("Debian's chromium is missing (/usr/bin/chromium): "
                    "apt-get install -y chromium (bash scripts/setup.sh --test, as root)")
    return sync_playwright


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ui_graph_materialize_and_table2(tmp_path):
    sync_playwright = _require_browser()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    timings: dict[str, float] = {}
    t0 = time.monotonic()

    env, probit = _prepare(tmp_path)
    timings["prepare_s"] = round(time.monotonic() - t0, 1)
    md_rows = _markdown_rows(probit["coefficients"])
    header, body = md_rows[0], {r[1]: r for r in md_rows[1:]}  # column 2: the term (column 1: its label)
    assert "y_lag" in body, probit["coefficients"]

    dev = DagsterDev(env, tmp_path / "dagster-dev.log")
    page = None
    try:
        dev.start()
        timings["dagster_dev_ready_s"] = round(dev.wait_ready(timeout=300), 1)
        t_ui = time.monotonic()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
                page.set_default_timeout(90_000)
                page.set_default_navigation_timeout(120_000)
                # in case the community dialog shows anyway: dismiss it whenever it appears
                page.add_locator_handler(
                    page.get_by_role("dialog").filter(has_text="Join the Dagster community"),
                    lambda d: d.get_by_role("button", name="Skip").click())
                _check_graph(page, dev)
                run_id = _materialize(page, dev)
                _check_table2(page, dev, header, body["y_lag"], probit["nobs"])
            except BaseException:
                if page is not None:
                    try:
                        page.screenshot(path=str(OUT / "failure.png"))
                    except Exception:
                        pass
                raise
            finally:
                browser.close()
        timings["browser_s"] = round(time.monotonic() - t_ui, 1)
    finally:
        t_stop = time.monotonic()
        report = dev.stop()
        timings["stop_s"] = round(time.monotonic() - t_stop, 1)
        timings["total_s"] = round(time.monotonic() - t0, 1)
        if dev.log_path.exists():
            shutil.copy(dev.log_path, OUT / "dagster-dev.log")
        (OUT / "timings.json").write_text(json.dumps({**timings, "stop": report}, indent=2))
        print(f"UI test timings: {timings}; stop: {report}")
    # what outlived dagster dev's own SIGTERM shutdown was SIGKILLed (and is in the report)
    assert not report.get("after_sigkill"), f"processes of dagster dev survived SIGKILL: {report}"
    assert run_id


def _check_graph(page, dev: DagsterDev) -> None:
    """The global asset lineage shows one node per layer (groups are drawn collapsed)."""
    page.goto(f"{dev.url}/asset-groups")
    for group in GROUPS:
        page.locator(f'[data-tooltip="{group}"]').first.wait_for(state="visible")
    # the sidebar tree lists the same groups
    for group in GROUPS:
        page.locator(f'[title="{group}"]').first.wait_for(state="visible")
    try:  # statuses arrive after the layout; the screenshot is nicer with them
        page.get_by_text("fetching statuses").first.wait_for(state="detached", timeout=60_000)
    except Exception:
        pass
    page.screenshot(path=str(OUT / "01_asset_graph.png"))


def _run_status(dev: DagsterDev, run_id: str) -> str:
    data = dev.graphql("query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
                       {"id": run_id})
    return data["runOrError"].get("status", data["runOrError"]["__typename"])


def _materialize(page, dev: DagsterDev) -> str:
    """Click Materialize on the asset page, follow the toast to the run, wait for success."""
    page.goto(f"{dev.url}/assets/{MATERIALIZE}")
    button = page.locator("button").filter(has_text=re.compile(r"^\s*Materialize\s*$"))
    button.first.wait_for(state="visible")
    page.get_by_text("Latest materialization").first.wait_for(state="visible")
    button.first.click()
    toast = page.locator("li").filter(has_text="Launched run")
    link = toast.locator('a[href^="/runs/"]').first
    link.wait_for(state="visible", timeout=120_000)
    page.screenshot(path=str(OUT / "02_materialize_launched.png"))
    run_id = link.get_attribute("href").rsplit("/", 1)[-1]
    assert re.fullmatch(r"[0-9a-f-]{36}", run_id), run_id

    page.goto(f"{dev.url}/runs/{run_id}")
    success = page.locator('[aria-label="run_success"]').first
    deadline = time.monotonic() + 300
    while True:
        if success.is_visible():
            break
        status = _run_status(dev, run_id)
        if status in ("FAILURE", "CANCELED", "CANCELING", "RunNotFoundError"):
            page.screenshot(path=str(OUT / "03_run.png"))
            pytest.fail(f"run {run_id} of {MATERIALIZE} ended {status}:\n{dev.log_tail()}")
        assert time.monotonic() < deadline, \
            f"run {run_id} not successful after 300 s (status {status}):\n{dev.log_tail()}"
        page.wait_for_timeout(1000)
    try:  # the event log tails itself; the screenshot is clearer with the last event in it
        page.get_by_text("RUN_SUCCESS").first.wait_for(state="visible", timeout=30_000)
    except Exception:
        pass
    page.screenshot(path=str(OUT / "03_run_success.png"))

    # cross-check through GraphQL: the run succeeded and made the asset's latest materialization
    assert _run_status(dev, run_id) == "SUCCESS"
    latest = dev.graphql(
        "query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset { "
        "assetMaterializations(limit: 1) { runId } } } }", {"key": {"path": [MATERIALIZE]}})
    assert latest["assetOrError"]["assetMaterializations"][0]["runId"] == run_id
    # the run launched by the Materialize button says which data it used, as the command
    # line's and the sensors' runs do (the run lists show the tag)
    tags = dev.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }",
                       {"id": run_id})["runOrError"]["tags"]
    assert {"key": "offshoring/data", "value": "synthetic"} in tags, tags
    return run_id


def _check_table2(page, dev: DagsterDev, header: list[str], y_lag: list[str], nobs: int) -> None:
    """The model page's `coefficients` metadata opens as a rendered Markdown table."""
    page.goto(f"{dev.url}/assets/{MODEL}")
    page.get_by_text("Table 2").first.wait_for(state="visible")  # the asset's description
    rows = page.locator("tr")
    coef_row = rows.filter(has=page.get_by_text("coefficients", exact=True)).first
    coef_row.wait_for(state="visible")
    nobs_row = rows.filter(has=page.get_by_text("nobs", exact=True)).first
    nobs_row.wait_for(state="visible")
    assert str(nobs) in nobs_row.inner_text(), nobs_row.inner_text()
    page.screenshot(path=str(OUT / "04_model_page.png"))

    coef_row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog").filter(has_text="coefficients")
    table = dialog.locator("table").first
    table.wait_for(state="visible")
    shown_header = [t.strip() for t in table.locator("th").all_inner_texts()]
    assert shown_header == header, shown_header
    row = table.locator("tr").filter(has=page.locator("td", has_text=re.compile(r"^\s*y_lag\s*$")))
    row.first.wait_for(state="visible")
    cells = [t.strip() for t in row.first.locator("td").all_inner_texts()]
    assert cells == y_lag, (cells, y_lag)
    page.screenshot(path=str(OUT / "05_table2_markdown.png"))
    dialog.get_by_role("button", name="Close").click()
