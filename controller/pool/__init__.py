"""The supervised process pool: builds, and any expensive call, isolated from the controller."""

from controller.pool.resilient import resilient, run, shared_pool
from controller.pool.supervisor import Pool
from reconcilers.errors import Crashed, OutOfMemory, ResilientError, Timeout

__all__ = [
    "Crashed",
    "OutOfMemory",
    "Pool",
    "ResilientError",
    "Timeout",
    "resilient",
    "run",
    "shared_pool",
]
