"""Pure: errors of the simulator: bad scenarios and unusable local infrastructure."""

from __future__ import annotations


class SimError(Exception):
    """A scenario, option or local broker problem; the message is for a person."""
