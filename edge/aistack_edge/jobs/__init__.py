"""Background transcription jobs (`background=true`): see docs/jobs.md."""

from aiohttp import web

from aistack_edge.jobs.runner import Jobs

JOBS = web.AppKey("jobs", Jobs)

__all__ = ["JOBS", "Jobs"]
