"""``make bench``: run every benchmark scenario and write docs/benchmarks.md.

python -m bench                          # full sizes (about 30 minutes here), writes the doc
python -m bench --smoke                  # tiny sizes, to check the benchmarks still run
python -m bench --only s5 --folder-files 2000 --out /tmp/b.md   # one scenario, chosen size

Importing bench.dropbox points the SDK at the local fake, which must happen
before anything imports ``dropbox`` (no other bench module does).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import dirrename, local, memory, profiles, renames, replicas, report
from bench import dropbox as dbx  # sets the SDK hosts before anything imports dropbox

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SCENARIOS = ("s1", "s5", "s7", "s6", "s8")  # s1 also runs S2b, S3, S2c, S4; s7 also S2a, S4

#: Full sizes, every scenario at least 5 runs. On 2026-12-03 make bench took
#: 29 min 39 s end to end on this 2-core machine (minutes: venv 1, S1 with S2b,
#: S3, S2c and S4 9.5, S5 0.9, S7 with S2a and S4 8.6, S6 0.7, S8 9.1). It
#: swings with the disk (rsync's own 100k copy took 16-50 s on 2026-12-02 and
#: 8-15 s that day); the header of docs/benchmarks.md says how long its run
#: took. At concurrency 1 S7 syncs 500 files, not 10,000: at 20 ms a download
#: the rate is the same and 10,000 would take over 3 minutes a run. S3 at 1M
#: files is measured apart (bench/memory.py). Each scenario's start and end go
#: to stderr.
FULL: dict[str, Any] = {
    "files": 100_000,
    "s1_runs": 5,
    "noop_runs": 5,
    "folder_files": 10_000,
    "base_files": 1_000,
    "s5_runs": 5,
    "dbx_plan": {1: (500, 5), 8: (10_000, 5), 32: (10_000, 5)},
    "s2a_sizes": (10_000, 100_000, 1_000_000),  # above 10,000 seeded (bench/seed.py)
    "rename_moves": 100_000,
    "rename_runs": 5,
    "s8": (1_000, 5, 5),  # blogs, files per blog, runs per replica count
}
SMOKE: dict[str, Any] = {
    "files": 1_000,
    "s1_runs": 1,
    "noop_runs": 1,
    "folder_files": 200,
    "base_files": 200,
    "s5_runs": 1,
    "dbx_plan": {1: (50, 1), 8: (200, 1), 32: (200, 1)},
    "s2a_sizes": (200, dbx.Seeded(300)),  # the seed and its check, tiny
    "rename_moves": 2_000,
    "rename_runs": 1,
    "s8": (20, 3, 1),
}


def render_renames(ren: dict[str, Any]) -> list[str]:
    lines = [
        "## S6: rename inference (pure, one core)",
        "",
        "| case | with steps | inputs | moves found | time | peak traced memory | target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = {"hashed": 1.0, "adversarial": 3.0}
    for r in ren["results"]:
        goal = targets[r["case"]]
        lines.append(
            f"| {r['case']} | {'yes' if r['order'] else 'no (as the planner calls it)'} | "
            f"{r['inputs']:,} | {r['moves']:,} | {r['median_s']:.2f} s "
            f"({r['min_s']:.2f}–{r['max_s']:.2f}) | {r['peak_traced_mb']:.0f} MB | ≤ {goal:g} s | "
            f"{'met' if r['median_s'] <= goal else '**missed**'} |"
        )
    return [
        *lines,
        "",
        "- *hashed*: 100,000 files in 1,000 renamed folders, one file in ten moved to another "
        "folder under a new name; every file has a content hash.",
        "- *adversarial*: 100,000 files of equal size with no hash and no id (nothing may be "
        "paired by content; only unique name+size+time matches).",
        "- The planner calls inference without `steps`; the rows with steps show what computing "
        "the applicable order on a model of the tree adds.",
        "",
    ]


def run(cfg: dict[str, Any], only: tuple[str, ...], work: Path) -> str:
    """Run the chosen scenarios with ``cfg`` and return the Markdown page."""
    scenarios: dict[str, Callable[[], list[str]]] = {
        "s1": lambda: _local(work / "local", cfg),
        "s5": lambda: report.rename_dir_section(
            dirrename.run(work / "rename", cfg["folder_files"], cfg["s5_runs"], cfg["base_files"])
        ),
        "s7": lambda: report.dropbox_section(
            dbx.run(work / "dbx", cfg["dbx_plan"], cfg["s2a_sizes"], cfg["noop_runs"]),
            dbx.target_rate,
        ),
        "s6": lambda: render_renames(renames.run(cfg["rename_moves"], cfg["rename_runs"])),
        "s8": lambda: _replicas(work / "replicas", *cfg["s8"]),
    }
    body: list[str] = []
    start = time.monotonic()
    for name in SCENARIOS:
        if name in only:
            _progress(start, f"{name}: running")
            body += scenarios[name]()
            _progress(start, f"{name}: done")
    runs = (
        f"{cfg['noop_runs']} runs per row unless a section says otherwise "
        "(runs per scenario are fixed in bench/__main__.py; "
        f"this run took {(time.monotonic() - start) / 60:.0f} minutes)."
    )
    return "\n".join(
        [*report.header(runs), *report.machine(), *body, *_apart(), *report.reproduce()]
    )


def _progress(start: float, message: str) -> None:
    """A line per scenario on stderr, with the time so far: a full run is half an hour."""
    elapsed = int(time.monotonic() - start)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


def _local(work: Path, cfg: dict[str, Any]) -> list[str]:
    tree = local.run(work, cfg["files"], cfg["s1_runs"], cfg["noop_runs"])
    return report.local_section(tree.files, tree.results, cfg["s1_runs"])


def _replicas(work: Path, blogs: int, files: int, runs: int) -> list[str]:
    try:
        postgres, redis = replicas.backends()
    except RuntimeError as exc:  # no server here: the row says so, the rest still runs
        return report.replicas_section(None, str(exc))
    return report.replicas_section(
        replicas.run(work, blogs, files, (1, 2, 4), runs, postgres, redis)
    )


def _apart() -> list[str]:
    """S3 at 1M, from the result file ``python -m bench.memory`` leaves (too slow to run here)."""
    if not memory.RESULT.exists():
        return report.memory_section(None)
    return report.memory_section(json.loads(memory.RESULT.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; print, do not write")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="s1 (+s2b, s3, s2c, s4), s5, s7 (+s2a, s4), s6, s8",
    )
    parser.add_argument("--files", type=int, help="S1-S3 tree size")
    parser.add_argument("--folder-files", type=int, help="S5 folder size")
    parser.add_argument("--dbx-files", type=int, help="S7 and S2a size, every concurrency")
    parser.add_argument("--runs", type=int, help="runs of every scenario")
    parser.add_argument("--out", type=Path, help="where to write the page")
    parser.add_argument(
        "--no-profile", action="store_true", help="do not sample missed targets with py-spy"
    )
    args = parser.parse_args()
    profiles.enabled = not args.no_profile
    cfg = dict(SMOKE if args.smoke else FULL)
    custom = any(v is not None for v in (args.files, args.folder_files, args.dbx_files, args.runs))
    if args.files:
        cfg["files"] = args.files
    if args.folder_files:
        cfg["folder_files"] = args.folder_files
    if args.runs:
        for key in ("s1_runs", "noop_runs", "s5_runs", "rename_runs"):
            cfg[key] = args.runs
        cfg["dbx_plan"] = {c: (n, args.runs) for c, (n, _) in cfg["dbx_plan"].items()}
    if args.dbx_files:
        cfg["dbx_plan"] = {c: (args.dbx_files, r) for c, (_, r) in cfg["dbx_plan"].items()}
        cfg["s2a_sizes"] = (args.dbx_files,)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        page = run(cfg, only, Path(tmp))
    out = args.out or (None if args.smoke or custom or only != SCENARIOS else DOC)
    if out is None:
        print(page)
    else:
        out.write_text(page, encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
