"""Benchmark: peak memory of the survey reader on junk input (a file that must be refused).

A delivery gate must refuse a broken file without the machine running out of
memory on it. Writes, to a temporary folder, survey files of `--size-mb` each
(default 200 MB) that carry a valid header and then

* ``text``: random text lines (letters, digits, spaces, punctuation, a separator now and then);
* ``ragged``: plausible rows, but with 20 or 22 fields instead of the header's 21;
* ``numbers``: plausible rows of the right width whose amounts are not numbers
  (``12x``, ``n/a``, ``--``) in every other row;
* ``quotes``: random text lines with stray double quotes (quoted fields that never end);

and runs `offshoring.readers.survey.read_survey` on each in a fresh child process.
It prints, per file, the outcome (it must be a `ContractError`), the child's
wall time, its peak RSS (``ru_maxrss`` from ``wait4``, and the largest sampled
RSS of its process tree) and the ratio of the peak to the file size. The
target is a peak under 1 GiB for a 200 MB file. Run:

    .venv/bin/python bench/bench_junk_input.py [--size-mb 200] [--kinds text,ragged,numbers,quotes]

The last line is one JSON object with the figures (``bench/run_all.py`` style).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_info, run_measured  # noqa: E402

from offshoring.readers.survey import SURVEY_COLUMNS  # noqa: E402

KINDS = ("text", "ragged", "numbers", "quotes")
TARGET_MIB = 1024
HEADER = (";".join(SURVEY_COLUMNS) + "\n").encode()

# one plausible row in the contract's Italian conventions (21 fields); tax codes vary per row
_ROW = ("{code};2008;15/03/2009;14.13.10;001272;{turnover};12,5;320000,25;210000;-1500,5;4,2;35,5;"
        "1;national;0;1;15000;2000;0;0;0")


def _text_block(rng: np.random.Generator, size: int, *, quotes: bool) -> bytes:
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789      .,-:/;"
                             + (b'"' if quotes else b""), dtype=np.uint8)
    block = alphabet[rng.integers(0, alphabet.size, size)]
    # a line break every 40-160 characters
    breaks = np.cumsum(rng.integers(40, 160, size // 40))
    block[breaks[breaks < size]] = ord("\n")
    return block.tobytes()


def _rows_block(rng: np.random.Generator, size: int, kind: str) -> bytes:
    lines, total, i = [], 0, 0
    while total < size:
        code = f"{rng.integers(0, 10**11):011d}" if i % 3 else f"RSSMRA{60 + i % 30}A01F205{chr(65 + i % 26)}"
        turnover = f"{rng.integers(10**5, 7 * 10**6)},{i % 100:02d}"
        if kind == "numbers" and i % 2:
            turnover = ("12x", "n/a", "--", "1,2,3")[i % 4]
        line = _ROW.format(code=code, turnover=turnover)
        if kind == "ragged":
            line = line.rsplit(";", 1)[0] if i % 2 else line + ";7"
        lines.append(line)
        total += len(line) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()


def write_junk(path: Path, kind: str, size_mb: float, seed: int = 3) -> int:
    """A survey file of about `size_mb` MB: the header, then junk of `kind`. Returns its size."""
    rng = np.random.default_rng(seed)
    size = int(size_mb * 1e6)
    block_size = min(size, 8_000_000)
    if kind in ("text", "quotes"):
        block = _text_block(rng, block_size, quotes=kind == "quotes")
    else:
        block = _rows_block(rng, block_size, kind)
    with open(path, "wb") as fh:
        fh.write(HEADER)
        written = len(HEADER)
        while written < size:
            part = block[: size - written]
            if len(part) < len(block):
                part = part[: part.rfind(b"\n") + 1]  # whole lines only: a cut row would be refused as ragged
                if not part:
                    break
            fh.write(part)
            written += len(part)
    return path.stat().st_size


CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from offshoring.readers.survey import read_survey
from offshoring.validation import ContractError
t = time.perf_counter()
try:
    read_survey({path!r}, 2008)
    out = {{"outcome": "loaded"}}
except ContractError as exc:
    out = {{"outcome": "ContractError", "rules": [f["rule"] for f in exc.reasons],
           "message_chars": len(str(exc)), "first_line": str(exc).splitlines()[1][:160]}}
except Exception as exc:  # noqa: BLE001
    out = {{"outcome": type(exc).__name__, "first_line": str(exc)[:160]}}
out["read_s"] = round(time.perf_counter() - t, 2)
print(json.dumps(out))
"""


def measure(path: Path) -> dict:
    res = run_measured([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))], interval=0.05)
    try:
        out = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"outcome": f"child failed (exit {res.returncode})", "stderr": res.stderr[-500:]}
    out.update(wall_s=round(res.wall_s, 2), maxrss_mib=round(res.maxrss_mib, 1),
               tree_peak_mib=round(res.tree_peak_mib, 1))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=200.0)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--workdir", help="write the files here (kept) instead of a temporary folder")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"machine: {machine_info()}")
        for kind in kinds:
            path = folder / f"junk_{kind}" / "survey_2008.csv"
            path.parent.mkdir(exist_ok=True)
            size = write_junk(path, kind, args.size_mb)
            r = measure(path)
            peak = max(r["maxrss_mib"], r["tree_peak_mib"])
            r.update(file_mib=round(size / 2**20, 1), peak_mib=peak, ratio=round(peak / (size / 2**20), 2),
                     target_met=peak < TARGET_MIB and r["outcome"] == "ContractError")
            results[kind] = r
            print(f"{kind:8s} file {r['file_mib']:7.1f} MiB  -> {r['outcome']} {r.get('rules', '')}  "
                  f"wall {r['wall_s']:.1f} s  peak RSS {peak:7.1f} MiB  ({r['ratio']:.2f}x the file)  "
                  f"{'OK' if r['target_met'] else 'ABOVE TARGET / NOT REFUSED'}")
    summary = {"size_mb": args.size_mb, "target_mib": TARGET_MIB, "results": results,
               "target_met": all(r["target_met"] for r in results.values())}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
