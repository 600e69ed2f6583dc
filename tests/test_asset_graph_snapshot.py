"""Snapshot of the asset graph: keys, groups, kinds, dependencies, partitions, checks.

An accidental change to the graph fails here. After an intended change, refresh the
snapshot with `UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_asset_graph_snapshot.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        checks = sorted(
            f"{c.name}{' (blocking)' if getattr(graph.get(c), 'blocking', False) else ''}"
            for c in node.check_keys
        )
        out[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "automation": node.automation_condition is not None,
            "checks": checks,
        }
    return out


def test_asset_graph_matches_snapshot():
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "asset graph changed; see the test's docstring to refresh the snapshot"


def test_every_layer_is_present():
    groups = {v["group"] for v in graph_snapshot().values()}
    assert groups == {"raw", "geography", "panel", "models", "robustness", "reports"}
