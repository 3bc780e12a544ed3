"""Pure: the audio toggle (EN 2023 row 15), as the query the capture side must obey.

Where the accepted version discloses audio collection, audio is on by default and the
user may turn it off; elsewhere it is off and cannot be turned on. When off, the
microphone must not be opened and the gate removes every audio track.
"""

from __future__ import annotations

from edge.policy.manifest import Manifest


def default_audio_on(manifest: Manifest) -> bool:
    """Row 15: 'Devices with microphones enable audio capture by default'."""
    return manifest.discloses_audio()


def may_open_microphone(manifest: Manifest, toggle: bool | None) -> bool:
    """True only if the version discloses audio and the toggle (default: on) is on."""
    if not manifest.discloses_audio():
        return False
    return default_audio_on(manifest) if toggle is None else toggle
