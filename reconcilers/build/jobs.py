"""One build as a self-contained, picklable job, and the in-process way to run jobs.

A job carries everything a worker process needs (the builder's name, the
bytes or the installed file's path, the content hash the store expects), so
running it needs no store and no source. :func:`run_job` is what the
supervised pool calls in its workers; :class:`InlineBuilds` runs jobs in the
calling thread, for library use without a pool.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reconcilers.errors import BuildError
from reconcilers.hashing import content_hash

from . import builders
from .entry import EntryDraft

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BuildJob:
    path: str
    builder: str
    #: The bytes to build; None: read ``file_path`` (large files are not kept).
    data: bytes | None
    file_path: str
    #: What the store expects installed; a different hash means the file changed.
    content_hash: str | None


@dataclass(frozen=True, slots=True)
class Built:
    """A worker's answer: the draft (None: not a post) or a content error, and the
    hash of the bytes it built from."""

    draft: EntryDraft | None
    error: str | None
    line: int | None
    built_hash: str


def run_job(job: BuildJob) -> Built:
    """Build one file; only :class:`BuildError` is an answer, anything else escapes.

    An escaping exception is the build's failure, not the content's: the
    caller turns it into a retryable crash.
    """
    data = job.data
    if data is None:
        with open(job.file_path, "rb") as handle:
            data = handle.read()
    built_hash = content_hash(data)
    try:
        draft = builders.load(job.builder).build(job.path, data)
    except BuildError as exc:
        return Built(None, exc.message, exc.line, built_hash)
    return Built(draft, None, None, built_hash)


class BuildRunner(Protocol):
    """Runs a batch of jobs; one answer (or exception) per job, in order."""

    def run(self, jobs: Sequence[BuildJob]) -> list[Built | BaseException]: ...


class InlineBuilds:
    """Jobs in the calling thread: no isolation, for libraries and tests."""

    def run(self, jobs: Sequence[BuildJob]) -> list[Built | BaseException]:
        results: list[Built | BaseException] = []
        for job in jobs:
            try:
                results.append(run_job(job))
            except Exception as exc:  # one bad build must not take down the batch
                results.append(exc)
        return results
