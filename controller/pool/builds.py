"""Builds in the supervised pool: a batch of jobs in parallel, one answer each."""

from __future__ import annotations

from collections.abc import Sequence

from controller.pool.supervisor import Pool
from reconcilers.build.jobs import BuildJob, Built, run_job


class PoolBuilds:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def run(self, jobs: Sequence[BuildJob]) -> list[Built | BaseException]:
        futures = [self.pool.submit(run_job, job) for job in jobs]
        results: list[Built | BaseException] = []
        for future in futures:
            error = future.exception()
            results.append(error if error is not None else future.result())
        return results
