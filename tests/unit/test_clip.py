"""Outgoing-clip check: a container with a subtitle stream is refused (fails closed)."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from edge.shell.clip import check_outgoing_clip, make_clip

_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name\nStyle: Default\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Text\n"
)


def _with_subtitle_stream(clip: bytes, container: str, codec: str) -> bytes:
    """Remux ``clip``'s video and add an (empty) subtitle stream, as a hostile muxer might."""
    buffer = io.BytesIO()
    with (
        av.open(io.BytesIO(clip), mode="r") as source,
        av.open(buffer, mode="w", format=container) as out,
    ):
        video = out.add_stream_from_template(source.streams.video[0])
        subtitle = out.add_stream(codec)
        context = subtitle.codec_context
        assert isinstance(context, av.subtitles.codeccontext.SubtitleCodecContext)
        context.subtitle_header = _ASS_HEADER  # FFmpeg refuses to open a text encoder without it
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = video
            out.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(("container", "codec"), [("matroska", "ass"), ("mp4", "mov_text")])
def test_check_outgoing_clip_refuses_a_subtitle_stream(container: str, codec: str) -> None:
    clip = make_clip([np.zeros((48, 64, 3), np.uint8)] * 3, 10, None)
    verdict = check_outgoing_clip(_with_subtitle_stream(clip, container, codec), True)
    assert not verdict.ok
    assert "neither video nor audio" in verdict.reason
    assert verdict.info is not None
    assert verdict.info.other_streams == 1
