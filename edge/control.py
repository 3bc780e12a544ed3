"""Pure: which purposes must stop when consent, the policy version or a toggle changes.

Design rule 4: a purpose that may no longer send stops *at once*: its unsent items are
purged, its in-flight items forgotten, its retained topics cleared, and each step is
recorded. A withdrawal, a consent lapsed by a policy switch and a version that discloses
less all come down to the same question, answered here once, so that no path can forget
a step (a policy switch once left the retained diagnostics on the broker because it
decided "what stops" apart from the withdrawal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from edge.model import Purpose
from edge.policy.manifest import Manifest


def enabled(manifest: Manifest, consent: Mapping[str, str]) -> frozenset[Purpose]:
    """The purposes that may send now under ``manifest`` and the consent snapshot."""
    return frozenset(manifest.enabled_purposes(consent))


def purposes_to_stop(
    before: frozenset[Purpose],
    after: frozenset[Purpose],
    withdrawn: Iterable[Purpose] = (),
) -> list[Purpose]:
    """Every purpose enabled before and not after, plus those withdrawn explicitly (a user
    may withdraw what was never granted: its queue and retained topics go all the same),
    in enum order. The agent's own purpose never stops."""
    stop = (before - after) | frozenset(withdrawn)
    return [p for p in Purpose if p in stop and p is not Purpose.AGENT]
