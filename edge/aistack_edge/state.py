"""Typed keys for what the edge application holds."""

import aiohttp
from aiohttp import web

from aistack_edge.catalog import Catalog
from aistack_edge.config import EdgeSettings
from aistack_edge.observability import Observability
from aistack_edge.slot import Slot
from aistack_edge.slot.idle import IdleCheck

SETTINGS = web.AppKey("settings", EdgeSettings)
SESSION = web.AppKey("session", aiohttp.ClientSession)
CATALOG = web.AppKey("catalog", Catalog)
SLOT = web.AppKey("slot", Slot)
OBSERVABILITY = web.AppKey("observability", Observability)
IDLE = web.AppKey("idle", IdleCheck)
"""Whether the backends on the slot's GPU run jobs (the fence's idle guard)."""
