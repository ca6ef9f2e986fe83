"""Deterministic benchmark trees: the same seed always gives the same files."""

from __future__ import annotations

import random
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


def make_tree(root: Path, files: int, *, seed: int = 1, post_share: float = 0.1) -> int:
    """Write ``files`` files of 1-4 KiB in nested folders (depth 1-5); returns bytes written."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    folders = [Path()]
    for i in range(max(files // 40, 1)):
        parent = rng.choice([f for f in folders if len(f.parts) < 5])
        folders.append(parent / f"{rng.choice(WORDS)}-{i}")
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(files):
        folder = rng.choice(folders[1:]) if len(folders) > 1 else Path()
        size = rng.randint(1024, 4096)
        if rng.random() < post_share:
            title = " ".join(rng.choice(WORDS) for _ in range(3))
            head = (
                f"Title: {title}\nTags: {rng.choice(WORDS)}, {rng.choice(WORDS)}\n\n# {title}\n\n"
            )
            body = " ".join(rng.choice(WORDS) for _ in range(size // 6))
            data = (head + body)[:size].encode()
            name = f"post-{i}.md"
        else:
            data = rng.randbytes(size)
            name = f"file-{i}.bin"
        (root / folder / name).write_bytes(data)
        total += len(data)
    return total
