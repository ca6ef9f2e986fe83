"""The pure core: tree types, planner, rename inference, state machine.

Nothing here reads a disk, the clock, the environment or random numbers; an
import-linter contract keeps it that way.
"""
