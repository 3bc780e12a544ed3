"""Pure: the on-device privacy agent for IP cameras and video doorbells.

Importing ``edge`` has no side effects; the daemon starts from ``python -m edge``.
"""

__version__ = "0.1.0"
