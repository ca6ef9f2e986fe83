"""S5: a folder of N files renamed in a local source, beside rsync and rclone.

    python -m bench.dirrename --files 10000 --runs 5

The question is whether a sync tool notices a rename or copies everything
again. "Bytes copied" is measured the same way for every tool, from outside:
before each sync every file of the destination gets an extra hard link in a
side folder, so no inode can be freed and reused during the sync; afterwards a
file in the renamed folder whose inode is not one of those was written anew.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import profiles
from bench.local import BLOG, CONTROLLER, add_blog, blog_folder, controller
from bench.runner import Result, Run, require_converged, run_process
from bench.trees import make_flat_folder, make_tree

RCLONE = shutil.which("rclone")


@dataclass
class Peer:
    name: str
    dest: Path
    sync: list[str]
    result: Result = field(init=False)
    copied: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.result = Result(self.name)


def _pin(dest: Path, folder: str, pins: Path) -> set[int]:
    """Hard-link every file of ``dest/folder`` under ``pins``; returns their inodes."""
    shutil.rmtree(pins, ignore_errors=True)
    pins.mkdir(parents=True)
    inodes = set()
    for i, path in enumerate((dest / folder).iterdir()):
        os.link(path, pins / str(i))
        inodes.add(path.stat().st_ino)
    return inodes


def _bytes_copied(dest: Path, folder: str, old: set[int]) -> int:
    copied = 0
    for path in (dest / folder).iterdir():
        st = path.stat()
        if st.st_ino not in old:
            copied += st.st_size
    return copied


def run(work: Path, folder_files: int, runs: int, base_files: int = 1_000) -> dict[str, object]:
    """Rename ``big-k`` to ``big-k+1`` ``runs`` times; every tool syncs each rename."""
    source = work / "source"
    make_tree(source, base_files, seed=3)
    make_flat_folder(source, folder_files)
    data = work / "data"
    env = add_blog(data, source, builds=True)
    peers = [Peer("rsync -a --delete", work / "rsync", ["rsync", "-a", "--delete"])]
    rclone_note = ""
    if RCLONE:
        base = [RCLONE, "sync", "--create-empty-src-dirs", "--config", os.devnull]
        peers.append(Peer("rclone sync", work / "rclone", base))
        peers.append(
            Peer("rclone sync --track-renames", work / "rclone-tr", [*base, "--track-renames"])
        )
    else:
        rclone_note = "rclone is not installed: its rows were skipped"

    def peer_sync(peer: Peer) -> Run:
        src = f"{source}/" if peer.sync[0] == "rsync" else str(source)
        dst = f"{peer.dest}/" if peer.sync[0] == "rsync" else str(peer.dest)
        out = run_process([*peer.sync, src, dst])
        require_converged(source, peer.dest, peer.name)
        return out

    controller(env, "reconcile", "--blog", BLOG, "--json")
    require_converged(source, blog_folder(data), "controller")
    for peer in peers:
        peer_sync(peer)

    wall, pass_s = Result("controller reconcile (process)"), Result("controller pass (in-process)")
    copied: list[int] = []
    moves: list[int] = []
    for k in range(runs):
        old, new = f"big-{k}", f"big-{k + 1}"
        (source / old).rename(source / new)
        inodes = _pin(blog_folder(data), old, work / "pins")
        run_, report = controller(env, "reconcile", "--blog", BLOG, "--json")
        require_converged(source, blog_folder(data), "controller")
        wall.add(run_)
        pass_s.samples.append(float(report["seconds"]))  # type: ignore[arg-type]
        moves.append(int(report["actions"]["move"]))  # type: ignore[index]
        copied.append(_bytes_copied(blog_folder(data), new, inodes))
        for peer in peers:
            inodes = _pin(peer.dest, old, work / "pins")
            out = peer_sync(peer)
            peer.result.add(out)
            peer.copied.append(_bytes_copied(peer.dest, new, inodes))
    shutil.rmtree(work / "pins", ignore_errors=True)
    if profiles.available():  # one more rename, sampled (not among the timed runs)
        (source / f"big-{runs}").rename(source / f"big-{runs + 1}")
        top = profiles.spy_command([CONTROLLER, "reconcile", "--blog", BLOG, "--json"], env)
        require_converged(source, blog_folder(data), "controller (profiled)")
        pass_s.note = "; ".join(top)
    return {
        "folder_files": folder_files,
        "base_files": base_files,
        "controller": wall,
        "controller_pass": pass_s,
        "controller_copied": max(copied),
        "controller_moves": moves,
        "peers": [(p.result, max(p.copied)) for p in peers],
        "note": rclone_note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rename-") as tmp:
        out = run(Path(tmp), args.files, args.runs)
    out["controller"] = out["controller"].as_dict()  # type: ignore[attr-defined]
    out["controller_pass"] = out["controller_pass"].as_dict()  # type: ignore[attr-defined]
    out["peers"] = [(r.as_dict(), c) for r, c in out["peers"]]  # type: ignore[attr-defined]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
