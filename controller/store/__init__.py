"""The SQL store: blogs, remote and synced trees, entries, history."""

from controller.store.records import BlogRecord, EntryRecord, HistoryRecord
from controller.store.store import Store

__all__ = ["BlogRecord", "EntryRecord", "HistoryRecord", "Store"]
