"""Shell (FFmpeg through PyAV, all in memory): event clips, and the inspection every
outgoing container passes before it is queued.

``make_clip`` muxes frames (H.264, yuv420p) and, only when given, the microphone's
samples (AAC) into an MP4 that common players open. ``check_outgoing_clip`` parses the
container back and FAILS CLOSED: a container that does not parse, that has an audio
stream while audio is not allowed, or any stream that is neither video nor audio, is
refused. ``strip_audio`` remuxes the video stream alone (no re-encode).

PyAV is imported inside the functions: it costs ~20 MB of RSS, and a device that never
makes clips never pays it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import InputError
from edge.media.audio import AudioChunk
from edge.media.frames import Frame, validate_frame

if TYPE_CHECKING:
    import av.container

MAX_CLIP_FRAMES = 600


@dataclass(frozen=True, slots=True)
class ClipInfo:
    container: str
    video_streams: int
    audio_streams: int
    other_streams: int
    duration_s: float
    video_frames: int


@dataclass(frozen=True, slots=True)
class ClipVerdict:
    ok: bool
    reason: str
    info: ClipInfo | None


def _even(n: int) -> int:
    return n - (n % 2)


def make_clip(frames: Iterable[Frame], fps: int, audio: AudioChunk | None = None) -> bytes:
    """An MP4 of ``frames`` at ``fps``, with an AAC track only if ``audio`` is given.

    ``frames`` may be a generator: frames are encoded as they come, none is kept.

    Raises:
        InputError: no frames, too many, frames of different sizes, or a bad fps.
    """
    import av

    if not 1 <= fps <= 60:
        raise InputError(f"clip: fps must be 1..60, got {fps}")
    feed = iter(frames)
    try:
        first = validate_frame(next(feed))
    except StopIteration:
        raise InputError("clip: no frames") from None
    height, width = _even(first.shape[0]), _even(first.shape[1])
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "28"}
        sound = out.add_stream("aac", rate=audio.sample_rate_hz) if audio is not None else None
        if sound is not None:
            sound.layout = "mono"
        for count, frame in enumerate(itertools.chain([first], feed), start=1):
            if count > MAX_CLIP_FRAMES:
                raise InputError(f"clip: more than {MAX_CLIP_FRAMES} frames")
            checked = validate_frame(frame)
            if checked.shape[:2] != first.shape[:2]:
                raise InputError("clip: every frame must have the same size")
            picture = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(checked[:height, :width]), format="bgr24"
            )
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        if sound is not None and audio is not None:
            samples = av.AudioFrame.from_ndarray(
                audio.samples.reshape(1, -1), format="s16", layout="mono"
            )
            samples.sample_rate = audio.sample_rate_hz
            resampler = av.AudioResampler(
                format="fltp", layout="mono", rate=audio.sample_rate_hz, frame_size=1024
            )
            for chunk in [*resampler.resample(samples), *resampler.resample(None)]:
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return buffer.getvalue()


def _open(data: bytes) -> av.container.InputContainer:
    import av

    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError) as err:
        raise InputError(f"clip: not a readable container ({err})") from err


def inspect_clip(data: bytes) -> ClipInfo:
    """Parse a container from memory and count its streams and video frames.

    Raises:
        InputError: the bytes are not a container FFmpeg can read.
    """
    import av

    if not data:
        raise InputError("clip: empty")
    with _open(data) as container:
        kinds = [stream.type for stream in container.streams]
        try:
            frames = sum(1 for _ in container.decode(video=0)) if "video" in kinds else 0
        except av.FFmpegError as err:
            raise InputError(f"clip: video does not decode ({err})") from err
        duration = (container.duration or 0) / 1_000_000
        return ClipInfo(
            container=container.format.name,
            video_streams=kinds.count("video"),
            audio_streams=kinds.count("audio"),
            other_streams=len(kinds) - kinds.count("video") - kinds.count("audio"),
            duration_s=duration,
            video_frames=frames,
        )


def check_outgoing_clip(data: bytes, audio_allowed: bool) -> ClipVerdict:
    """The last check before a clip is queued; never raises, fails closed."""
    try:
        info = inspect_clip(data)
    except InputError as err:
        return ClipVerdict(False, str(err), None)
    if info.video_streams != 1:
        return ClipVerdict(False, f"expected one video stream, found {info.video_streams}", info)
    if info.other_streams:
        return ClipVerdict(
            False, f"{info.other_streams} stream(s) that are neither video nor audio", info
        )
    if info.audio_streams and not audio_allowed:
        return ClipVerdict(
            False, f"{info.audio_streams} audio stream(s) while audio is not allowed", info
        )
    return ClipVerdict(True, "ok", info)


@dataclass(frozen=True, slots=True)
class AudioRuleOutcome:
    """What rule 5 makes of one outgoing clip: ``clip`` to send (None: refused)."""

    clip: bytes | None
    stripped: bool
    reason: str


def enforce_audio_rule(data: bytes, audio_allowed: bool) -> AudioRuleOutcome:
    """Rule 5, its one home, used when a clip is queued and again when it is sent: keep a
    clip that passes ``check_outgoing_clip``; strip an audio track it may not carry and
    check again; refuse anything else. Never raises: whatever cannot be inspected is
    refused (fail closed)."""
    verdict = check_outgoing_clip(data, audio_allowed)
    if verdict.ok:
        return AudioRuleOutcome(data, False, "ok")
    if verdict.info is None or not verdict.info.audio_streams or audio_allowed:
        return AudioRuleOutcome(None, False, verdict.reason)
    try:
        stripped = strip_audio(data)
    except InputError as err:
        return AudioRuleOutcome(None, True, str(err))
    again = check_outgoing_clip(stripped, audio_allowed)
    if not again.ok:
        return AudioRuleOutcome(None, True, again.reason)
    return AudioRuleOutcome(stripped, True, "audio track stripped")


def strip_audio(data: bytes) -> bytes:
    """The same clip with its video stream only (remuxed, not re-encoded).

    Raises:
        InputError: not a readable container, or no video stream.
    """
    import av

    buffer = io.BytesIO()
    with _open(data) as source:
        if not source.streams.video:
            raise InputError("clip: no video stream to keep")
        in_video = source.streams.video[0]
        with av.open(buffer, mode="w", format="mp4") as out:
            out_video = out.add_stream_from_template(in_video)
            for packet in source.demux(in_video):
                if packet.dts is None:
                    continue
                packet.stream = out_video
                out.mux(packet)
    return buffer.getvalue()
