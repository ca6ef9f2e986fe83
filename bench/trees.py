"""Deterministic benchmark trees: the same seed always gives the same files.

Every tool in a scenario is measured on the very same tree, and reruns on
another day must see the same tree, so nothing here reads the clock or the OS
random source.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "sun",
    "moon",
    "river",
    "stone",
    "cloud",
    "field",
    "light",
    "north",
]
MAX_DEPTH = 5


def _folders(rng: random.Random, count: int) -> list[Path]:
    """``count`` folders whose depths are spread evenly over 1..MAX_DEPTH.

    Growing a random tree by picking any parent piles most folders at the
    deepest level; picking the depth first keeps every level well populated.
    """
    by_depth: list[list[Path]] = [[Path()]] + [[] for _ in range(MAX_DEPTH)]
    folders: list[Path] = []
    for i in range(count):
        depth = rng.randint(1, MAX_DEPTH)
        while not by_depth[depth - 1]:
            depth -= 1
        parent = rng.choice(by_depth[depth - 1])
        folder = parent / f"{rng.choice(WORDS)}-{i}"
        by_depth[depth].append(folder)
        folders.append(folder)
    return folders


def file_bytes(rng: random.Random, i: int, post_share: float = 0.1) -> tuple[str, bytes]:
    """One file's name and 1–4 KiB of content: a Markdown post with metadata, or binary."""
    size = rng.randint(1024, 4096)
    if rng.random() < post_share:
        title = " ".join(rng.choice(WORDS) for _ in range(3))
        head = f"Title: {title}\nTags: {rng.choice(WORDS)}, {rng.choice(WORDS)}\n\n# {title}\n\n"
        body = " ".join(rng.choice(WORDS) for _ in range(size // 6))
        return f"post-{i}.md", (head + body)[:size].encode()
    return f"file-{i}.bin", rng.randbytes(size)


def tree_files(files: int, *, seed: int = 1, post_share: float = 0.1) -> dict[str, bytes]:
    """The tree as ``{relative path: bytes}`` (for sources that are not a folder)."""
    rng = random.Random(seed)
    folders = _folders(rng, max(files // 40, 1))
    out: dict[str, bytes] = {}
    for i in range(files):
        name, data = file_bytes(rng, i, post_share)
        out[(rng.choice(folders) / name).as_posix()] = data
    return out


def make_tree(root: Path, files: int, *, seed: int = 1, post_share: float = 0.1) -> int:
    """Write ``files`` files of 1-4 KiB in nested folders (depth 1-5); returns bytes written."""
    root.mkdir(parents=True, exist_ok=True)
    total = 0
    made: set[Path] = set()
    for rel, data in tree_files(files, seed=seed, post_share=post_share).items():
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)
        total += len(data)
    return total


def make_flat_folder(root: Path, files: int, *, seed: int = 2) -> Path:
    """One folder of ``files`` small files (the directory scenario 5 renames)."""
    folder = root / "big-0"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(files):
        name, data = file_bytes(rng, i)
        (folder / name).write_bytes(data)
    return folder


def depth_histogram(root: Path) -> dict[int, int]:
    """Files per folder depth (1 = a top-level folder), to check the tree's shape."""
    counts: Counter[int] = Counter()
    for path in root.rglob("*"):
        if path.is_file():
            counts[len(path.relative_to(root).parts) - 1] += 1
    return dict(sorted(counts.items()))
