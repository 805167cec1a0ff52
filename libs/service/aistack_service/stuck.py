"""A job that does not stop after its cancel: the service exits, and its supervisor
(`make up`'s, compose's `restart:`, Kubernetes) brings it back with its memory freed.

The edge holds the GPU slot until the job has stopped; a process that is gone computes
nothing, so its exit is the stop of last resort (a model load, a native call that never
checks its cancel)."""

import logging
import os

from aistack_contract.jobs import Jobs
from aistack_service.settings import ServiceSettings

log = logging.getLogger("aistack_service")

EXIT_STUCK = 70
"""The exit code (EX_SOFTWARE): a cancelled job did not stop."""


def exit_stuck(job_id: str, after_s: float) -> None:
    log.critical(
        "job %s has not stopped %g s after its cancel: exiting (code %d) for the "
        "supervisor to restart this service",
        job_id, after_s, EXIT_STUCK,
    )  # fmt: skip
    logging.shutdown()
    os._exit(EXIT_STUCK)  # a thread stuck in native code would keep a normal exit waiting


def exit_when_stuck(jobs: Jobs, settings: ServiceSettings) -> Jobs:
    """`jobs`, which now exit the service when one has not stopped within
    AISTACK_STOP_EXIT_S of its cancel (0: never)."""
    if settings.stop_exit_s > 0:
        jobs.when_stuck(settings.stop_exit_s, exit_stuck)
    return jobs
