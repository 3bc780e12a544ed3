"""Media: plates lose their detail, pixels far away stay, the anonymiser fails closed,
snapshots carry no metadata, clips carry audio only when allowed."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from edge.errors import InputError
from edge.media import plate_candidates as plates
from edge.media.anonymise import FallbackReason, anonymise
from edge.media.audio import validate_audio
from edge.media.blur import blur_everything, blur_regions
from edge.media.frames import validate_frame
from edge.media.plates import blur_plates, detect_plates
from edge.media.snapshot import encode_snapshot, jpeg_segments, strip_jpeg_metadata
from edge.model import Box
from edge.shell.clip import check_outgoing_clip, inspect_clip, make_clip, strip_audio


def _detail(image: np.ndarray, box: Box) -> float:
    crop = cv2.cvtColor(image[box.y : box.y + box.h, box.x : box.x + box.w], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


def _scene(
    text: str, size: tuple[int, int], plate: Box, dark: bool = False, lines: int = 1
) -> np.ndarray:
    rng = np.random.default_rng(1)
    frame = np.clip(rng.normal(90, 8, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    bg, fg = ((30, 30, 30), (235, 235, 235)) if dark else ((235, 235, 235), (20, 20, 20))
    cv2.rectangle(frame, (plate.x, plate.y), (plate.x + plate.w, plate.y + plate.h), bg, -1)
    parts = text.split(" ") if lines == 2 else [text]
    for i, part in enumerate(parts):
        line_h = plate.h / len(parts)
        scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_DUPLEX, int(line_h * 0.6), 2)
        (tw, th), _ = cv2.getTextSize(part, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
        scale *= min(1.0, plate.w * 0.9 / tw)
        (tw, th), _ = cv2.getTextSize(part, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
        origin = (plate.x + (plate.w - tw) // 2, int(plate.y + line_h * i + (line_h + th) / 2))
        cv2.putText(frame, part, origin, cv2.FONT_HERSHEY_DUPLEX, scale, fg, 2, cv2.LINE_AA)
    return frame


PLATES = [
    ("US 2:1 dark on light", "7ABC123", (1280, 720), Box(600, 500, 120, 60), False, 1),
    ("EU 4.6:1", "WX4821K", (1280, 720), Box(300, 520, 230, 50), False, 1),
    ("light on dark", "KA123AB", (1920, 1080), Box(900, 800, 210, 60), True, 1),
    ("Thai two lines", "AB 1234", (1280, 720), Box(500, 450, 130, 70), False, 2),
    ("far and small", "BC4321", (1920, 1080), Box(1500, 700, 64, 28), False, 1),
]


@pytest.mark.parametrize(
    ("name", "text", "size", "plate", "dark", "lines"), PLATES, ids=[p[0] for p in PLATES]
)
def test_blur_plates_removes_plate_detail_and_keeps_far_pixels(
    name: str, text: str, size: tuple[int, int], plate: Box, dark: bool, lines: int
) -> None:
    frame = _scene(text, size, plate, dark, lines)
    before = frame.copy()
    out = blur_plates(frame)
    assert np.array_equal(frame, before), "the input frame must not be modified"
    assert out.shape == frame.shape
    assert out.dtype == np.uint8
    assert _detail(out, plate) < 0.2 * _detail(frame, plate)
    far = Box(0, 0, size[0] // 4, size[1] // 4)
    assert np.array_equal(out[far.y : far.h, far.x : far.w], frame[far.y : far.h, far.x : far.w])


def test_detect_plates_finds_nothing_in_a_flat_frame() -> None:
    assert detect_plates(np.full((720, 1280, 3), 120, np.uint8)) == []


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 32_401])
def test_the_partial_sort_percentile_is_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    values = rng.integers(0, 1200, size).astype(np.int16)
    for q in (0.0, 50.0, 90.0, 100.0):
        assert plates._percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


@pytest.mark.parametrize("size", [1, 2, 3, 8, 31])
def test_the_short_median_is_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    for _ in range(50):
        values = rng.integers(0, 90, size) / rng.integers(1, 9)
        assert plates._median(values) == float(np.median(values))


def test_two_tone_passes_print_and_refuses_texture() -> None:
    printed = np.full((60, 200), 225, np.uint8)
    cv2.putText(printed, "AB 123", (10, 45), cv2.FONT_HERSHEY_DUPLEX, 1.4, 25, 3)
    soft = np.asarray(cv2.GaussianBlur(printed, (0, 0), 1.5), np.uint8)  # slightly blurred: passes
    texture = np.random.default_rng(4).integers(0, 256, (60, 200)).astype(np.uint8)
    texture = np.asarray(cv2.GaussianBlur(texture, (0, 0), 1.0), np.uint8)  # many tones
    flat = np.full((60, 200), 90, np.uint8)
    assert plates._two_tone(printed, 0, 0, 199, 59)
    assert plates._two_tone(soft, 0, 0, 199, 59)
    assert not plates._two_tone(texture, 0, 0, 199, 59)
    assert not plates._two_tone(flat, 0, 0, 199, 59)
    assert plates._two_tone(texture, 0, 0, 15, 15), "too small to judge: kept"


def test_blur_regions_changes_only_the_boxes() -> None:
    frame = np.random.default_rng(2).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    box = Box(50, 40, 60, 30)
    out = blur_regions(frame, [box, Box(-10, -10, 5, 5)])
    mask = np.zeros(frame.shape[:2], bool)
    mask[40:70, 50:110] = True
    assert np.array_equal(out[~mask], frame[~mask])
    assert not np.array_equal(out[mask], frame[mask])


def test_anonymise_falls_back_when_the_detector_raises() -> None:
    frame = _scene("7ABC123", (640, 360), Box(300, 200, 100, 50))

    def broken(_: np.ndarray) -> list[Box]:
        raise RuntimeError("model file corrupt")

    result = anonymise(frame, 1.0, itertools.count().__next__, detector=broken)
    assert result.fallback is FallbackReason.DETECTOR_FAILED
    assert np.array_equal(result.frame, blur_everything(frame))
    assert _detail(result.frame, Box(300, 200, 100, 50)) < 0.1 * _detail(
        frame, Box(300, 200, 100, 50)
    )


def test_anonymise_falls_back_when_over_budget() -> None:
    frame = _scene("7ABC123", (640, 360), Box(300, 200, 100, 50))
    ticks = iter([0.0, 5.0])
    result = anonymise(frame, 0.25, lambda: next(ticks), detector=lambda _: [])
    assert result.fallback is FallbackReason.OVER_BUDGET
    assert result.regions_blurred == 1


def test_anonymise_blurs_detected_boxes_within_budget() -> None:
    frame = _scene("7ABC123", (640, 360), Box(300, 200, 100, 50))
    ticks = iter([0.0, 0.01])
    result = anonymise(
        frame, 0.25, lambda: next(ticks), detector=lambda _: [Box(290, 190, 120, 70)]
    )
    assert result.fallback is None
    assert result.boxes == (Box(290, 190, 120, 70),)


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (np.zeros((10, 10, 3), np.float32), "dtype uint8"),
        (np.zeros((10, 10), np.uint8), "shape (H, W, 3)"),
        (np.zeros((0, 10, 3), np.uint8), "at least"),
        (np.zeros((4, 9000, 3), np.uint8), "at least"),
        (np.zeros((100, 9000, 3), np.uint8), "at most"),
        ("not an image", "numpy array"),
    ],
)
def test_bad_frames_give_a_clear_input_error(frame: object, fragment: str) -> None:
    with pytest.raises(InputError, match="frame: "):
        validate_frame(frame)
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        blur_plates(frame)  # type: ignore[arg-type]


def test_snapshot_is_a_jpeg_without_metadata() -> None:
    frame = _scene("7ABC123", (1920, 1080), Box(800, 700, 200, 100))
    data = encode_snapshot(frame, quality=70, max_side_px=1280)
    markers = jpeg_segments(data)
    assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE]
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert decoded.shape == (720, 1280, 3)


def test_strip_jpeg_metadata_drops_exif_and_comments() -> None:
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    plain = encoded.tobytes()
    exif_body = b"Exif\x00\x00GPS:52.2,21.0"
    exif = b"\xff\xe1" + (2 + len(exif_body)).to_bytes(2, "big") + exif_body
    comment = b"\xff\xfe" + (2 + 5).to_bytes(2, "big") + b"owner"
    tagged = plain[:2] + exif + comment + plain[2:]
    assert 0xE1 in jpeg_segments(tagged)
    stripped = strip_jpeg_metadata(tagged)
    assert b"GPS" not in stripped
    assert b"owner" not in stripped
    assert stripped == plain


@pytest.mark.parametrize(
    ("data", "fragment"), [(b"nope", "not a JPEG"), (b"\xff\xd8\xff\xe1\x00\xff", "truncated")]
)
def test_snapshot_inspection_refuses_non_jpeg(data: bytes, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        jpeg_segments(data)


def test_snapshot_bounds_are_checked() -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(InputError, match="quality"):
        encode_snapshot(frame, quality=0)
    with pytest.raises(InputError, match="max_side_px"):
        encode_snapshot(frame, max_side_px=1)


def _frames(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 255, (120, 161, 3), dtype=np.uint8) for _ in range(n)]


def _audio(seconds: float = 1.0):  # type: ignore[no-untyped-def]
    t = np.arange(int(16000 * seconds)) / 16000
    return validate_audio((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 16000)


def test_clip_with_audio_has_one_audio_stream() -> None:
    info = inspect_clip(make_clip(_frames(), 5, _audio()))
    assert (info.video_streams, info.audio_streams, info.other_streams) == (1, 1, 0)
    assert info.video_frames == 6


def test_clip_without_audio_has_no_audio_stream() -> None:
    clip = make_clip(_frames(), 5, None)
    assert inspect_clip(clip).audio_streams == 0
    assert check_outgoing_clip(clip, audio_allowed=False).ok


def test_check_outgoing_clip_refuses_audio_when_not_allowed_and_garbage() -> None:
    with_audio = make_clip(_frames(), 5, _audio())
    verdict = check_outgoing_clip(with_audio, audio_allowed=False)
    assert not verdict.ok
    assert "audio" in verdict.reason
    assert check_outgoing_clip(with_audio, audio_allowed=True).ok
    assert not check_outgoing_clip(b"\x00\x00\x00 not a container", audio_allowed=True).ok
    assert not check_outgoing_clip(b"", audio_allowed=True).ok


def test_strip_audio_keeps_every_video_frame() -> None:
    stripped = strip_audio(make_clip(_frames(), 5, _audio()))
    info = inspect_clip(stripped)
    assert info.audio_streams == 0
    assert info.video_frames == 6


def test_clip_opens_in_opencv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "clip.mp4"
    path.write_bytes(make_clip(_frames(), 5, None))
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 6


@pytest.mark.parametrize(
    ("samples", "rate", "fragment"),
    [
        (np.zeros(10, np.float32), 16000, "int16"),
        (np.zeros((2, 10), np.int16), 16000, "mono"),
        (np.zeros(0, np.int16), 16000, "no samples"),
        (np.zeros(10, np.int16), 12345, "sample rate"),
        ([1, 2, 3], 16000, "numpy array"),
    ],
)
def test_bad_audio_gives_a_clear_input_error(samples: object, rate: int, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        validate_audio(samples, rate)


def test_send_time_check_strips_a_queued_clip_envelope_and_refuses_garbage() -> None:
    import base64
    import json

    from edge.produce import clip_payload_for_sending

    clip = make_clip(_frames(), 5, _audio())
    body = {
        "v": 1,
        "data": {
            "serial_number": "SN0001",
            "event_clip": {"b64": base64.b64encode(clip).decode(), "type": "video/mp4"},
            "audio_track": {"codec": "aac", "seconds": 1.0},
        },
    }
    stripped, was = clip_payload_for_sending(json.dumps(body).encode(), audio_allowed=False)
    assert stripped is not None
    assert was
    data = json.loads(stripped)["data"]
    assert "audio_track" not in data
    assert inspect_clip(base64.b64decode(data["event_clip"]["b64"])).audio_streams == 0
    silent = {
        "v": 1,
        "data": {"event_clip": {"b64": base64.b64encode(make_clip(_frames(), 5, None)).decode()}},
    }
    payload = json.dumps(silent).encode()
    assert clip_payload_for_sending(payload, audio_allowed=False) == (payload, False)
    # What cannot be checked does not leave (fail closed), audio on or off.
    for garbage in (b"not json", b'{"data": {"event_clip": {"b64": "!!"}}}', b'{"data": {}}'):
        assert clip_payload_for_sending(garbage, audio_allowed=False) == (None, False)
    not_a_clip = {"data": {"event_clip": {"b64": base64.b64encode(b"junk").decode()}}}
    assert clip_payload_for_sending(json.dumps(not_a_clip).encode(), False)[0] is None
