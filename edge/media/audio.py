"""Pure: microphone samples as a validated value (int16 mono at a known rate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.errors import InputError

RATES_HZ = (8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
MAX_SECONDS = 120


@dataclass(frozen=True, slots=True)
class AudioChunk:
    samples: NDArray[np.int16] = field(repr=False)
    sample_rate_hz: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate_hz


def validate_audio(samples: object, sample_rate_hz: int) -> AudioChunk:
    """Raises InputError unless ``samples`` is a 1-D int16 array of sane length."""
    if sample_rate_hz not in RATES_HZ:
        raise InputError(f"audio: sample rate must be one of {RATES_HZ}, got {sample_rate_hz}")
    if not isinstance(samples, np.ndarray):
        raise InputError(f"audio: expected a numpy array, got {type(samples).__name__}")
    if samples.dtype != np.int16:
        raise InputError(f"audio: expected int16 samples, got {samples.dtype}")
    if samples.ndim != 1:
        raise InputError(f"audio: expected mono (1-D) samples, got shape {samples.shape}")
    if samples.size == 0:
        raise InputError("audio: no samples")
    if samples.size > MAX_SECONDS * sample_rate_hz:
        raise InputError(f"audio: more than {MAX_SECONDS} s of samples")
    return AudioChunk(samples, sample_rate_hz)


def concat_audio(chunks: Sequence[AudioChunk]) -> AudioChunk:
    """One chunk from consecutive microphone reads, so a clip gets a single audio track.

    Raises:
        InputError: no chunks, mixed sample rates, or more than ``MAX_SECONDS`` in total.
    """
    if not chunks:
        raise InputError("audio: no chunks to concatenate")
    rates = {chunk.sample_rate_hz for chunk in chunks}
    if len(rates) != 1:
        raise InputError(f"audio: chunks have different sample rates {sorted(rates)}")
    samples = np.concatenate([chunk.samples for chunk in chunks])
    return validate_audio(samples, chunks[0].sample_rate_hz)
