"""S8 must keep running: replicas on PostgreSQL + Redis at smoke size, correctness only.

``bench.replicas.run`` already raises when a blog folder differs from its
Dropbox tree or a file was downloaded other than once; this runs it at 20
blogs with one and two replicas and checks what is not speed: every blog
was passed by the replicas started. Never a timing. Skipped with the reason when
no PostgreSQL or Redis answers (the ``postgres_url`` and ``redis_url``
fixtures; in CI they fail instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import replicas

BLOGS, FILES = 20, 3


@pytest.mark.postgres
def test_s8_replicas_converge_every_blog_downloading_each_file_once(
    tmp_path: Path, postgres_url: str, redis_url: str, dropbox_fake: Any
) -> None:
    out = replicas.run(
        tmp_path, BLOGS, FILES, (1, 2), 1, postgres_url, redis_url, fake=dropbox_fake
    )
    assert (out["blogs"], out["files"], out["runs"]) == (BLOGS, BLOGS * FILES, 1)
    assert set(out["rows"]) == {1, 2}
    assert all(len(r.samples) == 1 and r.median > 0 for r in out["rows"].values())
    for n, (detail,) in out["runs_detail"].items():
        assert len(detail["passes"]) == n
        # Every blog was passed; a replica may pass a blog another just finished
        # (it read the blog as due before the other's pass was recorded).
        assert sum(detail["passes"]) >= BLOGS and sum(detail["leases"]) >= BLOGS
    assert len(dropbox_fake.downloads) == 2 * BLOGS * FILES  # one run per replica count
