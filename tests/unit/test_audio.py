"""Audio chunks: concatenation keeps every sample and refuses mixed rates."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import InputError
from edge.media.audio import concat_audio, validate_audio


def test_concat_audio_keeps_samples_in_order() -> None:
    first = validate_audio(np.arange(10, dtype=np.int16), 16_000)
    second = validate_audio(np.arange(10, 25, dtype=np.int16), 16_000)
    joined = concat_audio([first, second])
    assert joined.sample_rate_hz == 16_000
    assert np.array_equal(joined.samples, np.arange(25, dtype=np.int16))


@pytest.mark.parametrize(
    ("rates", "fragment"), [((), "no chunks"), ((8_000, 16_000), "different sample rates")]
)
def test_concat_audio_refuses_bad_input(rates: tuple[int, ...], fragment: str) -> None:
    chunks = [validate_audio(np.zeros(8, dtype=np.int16), rate) for rate in rates]
    with pytest.raises(InputError, match=fragment):
        concat_audio(chunks)
