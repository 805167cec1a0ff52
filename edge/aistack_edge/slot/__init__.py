"""The GPU slot: at most one inference workload at a time, across every capability."""

from aistack_edge.slot.lease import Holding, Lease, Slot, SlotObserver
from aistack_edge.slot.stores import LeaseStore, MemoryStore, RedisStore

__all__ = ["Holding", "Lease", "LeaseStore", "MemoryStore", "RedisStore", "Slot", "SlotObserver"]
