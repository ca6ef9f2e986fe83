"""Domain layer: what "in sync" means for a blog folder.

``reconcilers.core`` is pure (no I/O, no clock); ``sources``, ``build`` and
``executor`` are the thin shells that touch disks and networks.
"""
