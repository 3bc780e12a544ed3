"""Bad input, fuzzed: configs, frames, audio, receipts and manifests give clear errors,
never a crash of another kind."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge.config import parse_config
from edge.errors import ConfigError, InputError
from edge.media.audio import validate_audio
from edge.media.frames import validate_frame
from edge.media.plates import detect_plates
from edge.policy.receipts import parse_receipt

toml_values = st.one_of(
    st.integers(-(2**31), 2**31),
    st.text(max_size=20),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=8), max_size=3),
)
keys = st.sampled_from(
    ["serial", "version", "port", "host", "endpoints", "ca", "key", "keepalive_s", "enabled", "x"]
)
tables = st.sampled_from(["device", "policy", "broker", "tls", "outbox", "media", "audio", "other"])


def _toml(doc: dict[str, dict[str, object]]) -> str:
    lines = []
    for table, items in doc.items():
        lines.append(f"[{table}]")
        for key, value in items.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = (
                    '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
                )
            elif isinstance(value, list):
                text = (
                    "["
                    + ", ".join(
                        '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
                        for v in value
                    )
                    + "]"
                )
            else:
                text = repr(value)
            lines.append(f"{key} = {text}")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(tables, st.dictionaries(keys, toml_values, max_size=5), max_size=5))
def test_parse_config_gives_config_errors_with_paths_or_a_config(
    doc: dict[str, dict[str, object]],
) -> None:
    try:
        parse_config(_toml(doc))
    except ConfigError as err:
        issues = err.issues
    else:
        return
    assert issues
    assert all(str(issue) for issue in issues)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_config_survives_arbitrary_text(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as err:
        issues = err.issues
    else:
        return
    assert issues


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.float32, np.int16]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
    )
)
def test_frames_of_any_shape_and_type_give_input_error_or_work(array: np.ndarray) -> None:
    try:
        frame = validate_frame(array)
    except InputError:
        return
    assert isinstance(detect_plates(frame), list)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.int16, np.int32, np.float64]),
        shape=hnp.array_shapes(max_dims=2, min_side=0, max_side=50),
    ),
    st.sampled_from([8000, 16000, 44100, 1, 0, -5]),
)
def test_audio_buffers_give_input_error_or_a_chunk(samples: np.ndarray, rate: int) -> None:
    try:
        chunk = validate_audio(samples, rate)
    except InputError:
        return
    assert chunk.samples.dtype == np.int16


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=15), inner, max_size=6)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_receipts_of_any_shape_give_input_error_or_a_receipt(obj: object) -> None:
    try:
        parse_receipt(obj)
    except InputError as err:
        message = str(err)
    else:
        return
    assert message.startswith("receipt")
