"""Exclusive per-blog leases with fencing tokens (SQL or Redis backend)."""

from controller.leases.base import Grant, Holding, LeaseBackend
from controller.leases.manager import Lease, Leases, open_leases

__all__ = ["Grant", "Holding", "Lease", "LeaseBackend", "Leases", "open_leases"]
