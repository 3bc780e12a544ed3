"""Pure: the classical plate candidates: every box that may hold a plate. OpenCV + NumPy.

Theory of operation. Whatever the country, a plate is a row of characters: glyphs of
one height, side by side, a little apart, darker or lighter than the plate around them
(US 2:1, EU 4.6:1, Mercosur, Thai two-line plates, light-on-dark, night IR). The
detector finds such rows on a grey copy of the frame scaled to ``WORK_WIDTH_PX``:

1. Glyphs: a local-mean threshold (``ADAPTIVE_BLOCKS_PX``, ``ADAPTIVE_C``) in both
   polarities, so dark-on-light and light-on-dark plates and dim frames work alike.
   Long horizontal runs (plate borders, bumper edges) are removed first
   (``LINE_LENGTH_PX``): a glyph touching the plate's frame would otherwise be one blob
   with it.
2. Glyph-like components: ``GLYPH_HEIGHT_PX`` high, narrower than tall, partly filled.
3. Rows: glyphs chained left to right when their heights are within ``HEIGHT_RATIO``,
   their centres on one line and the gap under ``GAP_RATIO`` glyph heights. A row of
   ``MIN_GLYPHS`` or more whose glyphs look like characters (median width/height and
   fill, ``MIN_ASPECT``/``MAX_FILL``: this rejects fence bars) is a plate; a row of only
   ``MIN_GLYPHS`` must also be tightly aligned (``ALIGN_TOLERANCE``). Glyphs stacked
   right above or below a row (``STACK_REACH``) join it: two-line plates.
4. The plate box is the row grown by ``PAD_X`` and ``PAD_Y`` glyph heights (a plate's
   margins and its state or country name), mapped back to frame pixels.
5. Plates too small for their glyphs to come apart are found as dense bands of vertical
   strokes (``STROKE_PASSES``).
6. A row or band must look printed: two even tones, characters and ground
   (``TWO_TONE_MAX``). Foliage, gravel and car parts have many tones.

Tuned for recall first: a textured patch blurred for nothing costs picture quality; a
plate missed is a leak. Measured figures are in docs/benchmarks.md; the tuning used the
dev photos only to choose these constants (no model is trained on them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.media.frames import Frame, validate_frame
from edge.model import Box

WORK_WIDTH_PX = 960
ADAPTIVE_BLOCKS_PX = (11, 25)
ADAPTIVE_C = 6.0
LINE_LENGTH_PX = 18
GLYPH_HEIGHT_PX = (6, 70)  # at work scale: ~14 to ~140 px high in a 1080p frame
ROW_PYRAMID_STEP = 2.5  # coarser copies for close-up glyphs; overlaps 6-70 px by ~3x
MERGE_OVERLAP = 0.3  # share of the smaller box: two finds of one plate, merged
MIN_ROW_WIDTH_PX = 160
COARSE_GLYPH_MIN_PX = (
    6  # coarser copies: any glyph (20-26 px tripled the sweep misses for -0.06 collateral)
)
MAX_GLYPH_ASPECT = 1.0
MIN_GLYPH_FILL = 0.15
MAX_GLYPH_FILL = 0.95
HEIGHT_RATIO = 1.43
CENTRE_TOLERANCE = 0.3
GAP_RATIO = 1.5
MIN_GLYPHS = 3
MAX_ROW_LENGTH = 14.0  # glyph heights: longer rows are text or texture, not a plate
MIN_ASPECT = 0.3
MAX_FILL = 0.8
ALIGN_TOLERANCE = 0.2
STACK_REACH = 1.8  # glyph heights above or below a row where a second line may sit
PAD_X = 1.3
MAX_SLOPE = 0.3  # tilt (dy/dx) taken into a box's height, at most (~17 degrees)
MIN_BOX_ASPECT = 2.0  # width / height of a row's box, at least (US and Thai plates are 2:1)
PAD_Y = 1.2
CORE_PAD = 0.35  # glyph heights around a row's glyphs: the core a verifier judges
EDGE_PERCENTILE = 90.0  # stroke-density passes: strokes are the frame's strongest 10 %
EDGE_MIN = 40.0  # ... and at least this strong (a flat frame has none)
SECOND_LINE_DENSITY = 0.15  # stroke share in a strip above or below a band: a second line
TWO_TONE_MAX = 0.37  # spread within a candidate's two tones / their distance (see _two_tone)
TWO_TONE_MIN_SHARE = 0.12  # ... and the rarer tone (the characters) covers at least this share
TWO_TONE_MIN_PX = 400  # candidates smaller than this (work pixels) are not checked


@dataclass(frozen=True, slots=True)
class StrokePass:
    """One stroke-density search for plates too small for their glyphs to stay apart."""

    work_width_px: int
    plate_heights_px: tuple[int, ...]  # at ``work_width_px``
    density_min: float
    max_height_ratio: float  # a band may be up to this many plate heights high
    min_aspect: float
    pad_x: float
    pad_y: float
    stack_lines: bool  # join two-line bands (Thai plates) into one box


STROKE_PASSES = (
    # ~20-28 px high in a 1080p frame; two-line plates blurred whole.
    StrokePass(960, (10, 14), 0.4, 1.6, 1.0, 0.15, 0.9, True),
    # The first session's coarse pass, ~30-50 px high in 1080p: it finds small, far plates
    # of every style on the simulator's streets that the finer pass misses. (Its 7 px
    # window, ~21 px in 1080p, only repeated the finer pass: dropping it changed no
    # synthetic plate of 8-29 px and took 0.017 collateral off the dev photos.)
    StrokePass(640, (10, 16), 0.22, 2.2, 1.2, 0.15, 0.3, False),
)

_LINE_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (LINE_LENGTH_PX, 1))

Stats = NDArray[np.int32]  # rows of x, y, w, h, area


def _work_gray(frame: Frame) -> tuple[NDArray[np.uint8], float]:
    height, width = frame.shape[:2]
    scale = min(1.0, WORK_WIDTH_PX / width)
    gray = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return gray, scale


def _resized(gray: NDArray[np.uint8], width: int, height: int, scale: float) -> NDArray[np.uint8]:
    """``gray`` resized to ``scale`` times the frame's ``width`` x ``height``."""
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _glyphs(binary: NDArray[np.uint8], low: int = GLYPH_HEIGHT_PX[0]) -> Stats:
    """Components shaped like characters (step 2)."""
    _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        binary, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    s = np.asarray(stats[1:], dtype=np.int32)
    w, h, area = s[:, 2], s[:, 3], s[:, 4]
    high = GLYPH_HEIGHT_PX[1]
    keep = (
        (h >= low)
        & (h <= high)
        & (w >= 2)
        & (w <= h * MAX_GLYPH_ASPECT)
        & (area >= MIN_GLYPH_FILL * w * h)
        & (area <= MAX_GLYPH_FILL * w * h)
    )
    return s[keep]


def _linked_groups(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Indexes 0..n-1 grouped by the links in ``pairs`` (union-find), each group in
    increasing order."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[b] = a
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _median(values: NDArray[np.float64]) -> float:
    """``np.median`` of a short array, without its overhead (it was a tenth of the time)."""
    ordered = np.sort(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return float((ordered[mid - 1] + ordered[mid]) / 2)


def _rows(glyphs: Stats) -> list[tuple[float, float, float, float, float, float]]:
    """Rows of glyphs that look like a plate's characters (step 3): (x0, y0, x1, y1, h,
    |slope| of the glyph centres, i.e. the plate's tilt)."""
    if len(glyphs) < MIN_GLYPHS:
        return []
    g = glyphs[np.argsort(glyphs[:, 0], kind="stable")].astype(np.float64)
    x, y, w, h, area = g[:, 0], g[:, 1], g[:, 2], g[:, 3], g[:, 4]
    cy = y + h / 2
    cx = x + w / 2
    right_limit = x + w + GAP_RATIO * h
    n = len(g)
    # Candidate pairs (i, j): j to the right of i within the gap, found for all glyphs at
    # once (x is sorted), then kept where heights and centres agree.
    end = np.searchsorted(x, right_limit, side="right")
    counts = np.maximum(end - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + offsets
    hi, hj = h[first], h[second]
    linked = (
        (hi <= hj * HEIGHT_RATIO)
        & (hj <= hi * HEIGHT_RATIO)
        & (np.abs(cy[second] - cy[first]) <= CENTRE_TOLERANCE * np.maximum(hi, hj))
        & (x[second] >= x[first] + 0.3 * w[first])
    )
    pairs = zip(first[linked].tolist(), second[linked].tolist(), strict=True)
    rows = []
    for group in _linked_groups(n, pairs):
        if len(group) < MIN_GLYPHS:
            continue
        m = np.asarray(group)
        if len(group) == MIN_GLYPHS:
            mid_h, mid_cy = _median(h[m]), _median(cy[m])
            aligned = (np.abs(h[m] - mid_h) <= ALIGN_TOLERANCE * mid_h) & (
                np.abs(cy[m] - mid_cy) <= ALIGN_TOLERANCE * mid_h
            )
            if not aligned.all():
                continue
        if _median(w[m] / h[m]) < MIN_ASPECT or _median(area[m] / (w[m] * h[m])) > MAX_FILL:
            continue
        m = _along_the_row(m, x, w, h, cx, cy)
        glyph_h = _median(h[m])
        x0, x1 = float(x[m].min()), float((x[m] + w[m]).max())
        if x1 - x0 > MAX_ROW_LENGTH * glyph_h:
            continue
        y0, y1 = float(y[m].min()), float((y[m] + h[m]).max())
        # A second line of a two-line plate (Thai: two or three glyphs and the province)
        # may be too short to be a row by itself: take in glyphs stacked right above or
        # below the row, within its width.
        stacked = (
            (cx >= x0)
            & (cx <= x1)
            & (h <= glyph_h * HEIGHT_RATIO)
            & (h >= glyph_h / HEIGHT_RATIO)
            & (cy >= y0 - STACK_REACH * glyph_h)
            & (cy <= y1 + STACK_REACH * glyph_h)
        )
        if int(stacked.sum()) >= len(group) + 2:  # the row's own glyphs and two more
            y0 = min(y0, float(y[stacked].min()))
            y1 = max(y1, float((y[stacked] + h[stacked]).max()))
        slope = abs(float(np.polyfit(cx[m], cy[m], 1)[0])) if np.ptp(cx[m]) > 0 else 0.0
        rows.append((x0, y0, x1, y1, glyph_h, min(slope, MAX_SLOPE)))
    return rows


def _along_the_row(
    m: NDArray[np.intp],
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    h: NDArray[np.float64],
    cx: NDArray[np.float64],
    cy: NDArray[np.float64],
) -> NDArray[np.intp]:
    """The row's glyphs and those that continue it along its own fitted line: on a
    tilted plate a glyph split in two, or a wider gap, breaks the pairwise link, and the
    row then starts mid-plate, leaving its first characters uncovered."""
    if np.ptp(cx[m]) <= 0:
        return m
    slope, intercept = np.polyfit(cx[m], cy[m], 1)
    glyph_h = _median(h[m])
    members = set(m.tolist())
    while True:
        x0, x1 = float(x[m].min()), float((x[m] + w[m]).max())
        near = (
            (h <= glyph_h * HEIGHT_RATIO)
            & (h >= glyph_h / HEIGHT_RATIO)
            & (np.abs(cy - (slope * cx + intercept)) <= CENTRE_TOLERANCE * glyph_h)
            & (x + w >= x0 - GAP_RATIO * glyph_h)
            & (x <= x1 + GAP_RATIO * glyph_h)
        )
        found = [int(k) for k in np.flatnonzero(near) if int(k) not in members]
        if not found:
            return m
        members.update(found)
        m = np.asarray(sorted(members))


def _percentile(values: NDArray[np.int16], q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation), by partial sort: a full
    sort of a frame's sample costs about half a millisecond."""
    position = (len(values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(values) - 1)
    part = np.partition(values, (low, high))
    a, b = float(part[low]), float(part[high])
    return a + (b - a) * (position - low)


Band = tuple[int, int, int, int, tuple[int, int, int, int]]  # padded x, y, w, h; the band


def _stroke_bands(gray: NDArray[np.uint8], spec: StrokePass) -> list[Band]:
    """Dense bands of vertical strokes at plate size on ``gray`` (at ``spec.work_width_px``),
    in that image's pixels: the padded box, and the band itself (x0, y0, x1, y1)."""
    strokes = np.abs(cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3))
    # The frame's own stroke level, from every 4th pixel both ways (a full sort is slow).
    sample = strokes[::4, ::4]
    level = max(EDGE_MIN, _percentile(sample.ravel(), EDGE_PERCENTILE))
    edges = (strokes > level).view(np.uint8)
    found: list[Band] = []
    for plate_h in spec.plate_heights_px:
        # Stroke counts per window, in integers (faster than a normalised float filter):
        # a density over ``density_min`` is a count over that share of the window.
        window = (max(3, plate_h * 2), max(3, plate_h // 2))
        counts = cv2.boxFilter(edges, cv2.CV_16U, window, normalize=False)
        least = int(spec.density_min * window[0] * window[1] + 1e-9)
        kernel = cv2.getStructuringElement(
            cv2.MORPH_RECT, (max(3, plate_h // 2), max(3, plate_h // 4))
        )
        dense = cv2.morphologyEx((counts > least).view(np.uint8), cv2.MORPH_CLOSE, kernel)
        _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
            dense, 8, cv2.CV_32S, cv2.CCL_GRANA
        )
        s = np.asarray(stats[1:], dtype=np.int64)
        widths, heights, areas = s[:, 2], s[:, 3], s[:, 4]
        aspects = widths / np.maximum(heights, 1)
        keep = (
            (heights >= plate_h * 0.4)
            & (heights <= plate_h * spec.max_height_ratio)
            & (aspects >= spec.min_aspect)
            & (aspects <= 8.0)
            & (areas >= 0.4 * widths * heights)
        )
        for x, y, w, h, _ in s[keep].tolist():
            pad_x, pad_y = w * spec.pad_x, h * spec.pad_y
            found.append(
                (
                    int(x - pad_x),
                    int(y - pad_y),
                    int(w + 2 * pad_x) + 1,
                    int(h + 2 * pad_y) + 1,
                    (x, y, x + w, y + h),
                )
            )
    if not spec.stack_lines:
        return found
    return _stack_lines([_with_second_line(edges, band) for band in found])


def _with_second_line(edges: NDArray[np.uint8], band: Band) -> Band:
    """``band``, its box grown over a second line of strokes right above or below it.

    A two-line plate's shorter line (two characters, on Thai plates) is often too short
    to be a band of its own, and is then left out of the box: the strips of one line
    height above and below the band are checked for strokes at ``SECOND_LINE_DENSITY``."""
    bx, by, bw, bh, (x0, y0, x1, y1) = band
    h = y1 - y0
    top, bottom = by, by + bh
    above = edges[max(0, y0 - int(1.6 * h)) : max(0, y0 - int(0.2 * h)), x0:x1]
    if above.size and np.count_nonzero(above) >= SECOND_LINE_DENSITY * above.size:
        top = min(top, y0 - int(1.9 * h))
    below = edges[y1 + int(0.2 * h) : y1 + int(1.6 * h), x0:x1]
    if below.size and np.count_nonzero(below) >= SECOND_LINE_DENSITY * below.size:
        bottom = max(bottom, y1 + int(1.9 * h))
    return (bx, top, bw, bottom - top, band[4])


def _stack_lines(bands: list[Band]) -> list[Band]:
    """Two bands one above the other that overlap are the two lines of one plate (Thai):
    one box around both, so the plate is blurred whole, border to border."""
    ordered = sorted(bands, key=lambda b: b[1])
    pairs: list[tuple[int, int]] = []
    for i, (ax, ay, aw, ah, _) in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            bx, by, bw, bh, _ = ordered[j]
            if by >= ay + ah:
                break  # sorted by top: no later band overlaps this one vertically
            overlap_x = min(ax + aw, bx + bw) - max(ax, bx)
            stacked = abs((ay + ah / 2) - (by + bh / 2)) >= 0.4 * min(ah, bh)
            if stacked and overlap_x >= 0.6 * min(aw, bw):
                pairs.append((i, j))
    out: list[Band] = []
    for indexes in _linked_groups(len(ordered), pairs):
        group = [ordered[i] for i in indexes]
        x0, y0 = min(g[0] for g in group), min(g[1] for g in group)
        x1 = max(g[0] + g[2] for g in group)
        y1 = max(g[1] + g[3] for g in group)
        core = (
            min(g[4][0] for g in group),
            min(g[4][1] for g in group),
            max(g[4][2] for g in group),
            max(g[4][3] for g in group),
        )
        out.append((x0, y0, x1 - x0, y1 - y0, core))
    return out


def _two_tone(gray: NDArray[np.uint8], x0: int, y0: int, x1: int, y1: int) -> bool:
    """Whether the region looks printed: two tones (characters and ground), each even.

    Split at Otsu's threshold, the spread within each tone must stay under
    ``TWO_TONE_MAX`` times the distance between them. Grey levels spread like a bell
    curve (foliage, gravel, noise) give 0.378 (two half-normals: 0.603 sigma of spread,
    1.596 sigma apart), so 0.37 asks for a cleaner split than that. On the dev photos a
    plate is lost from 0.35 on, and the simulator's drawn EU plates from about 0.32.

    The rarer tone must also cover ``TWO_TONE_MIN_SHARE`` of the region: thin lines on a
    wall are not characters (0.2 would miss drawn two-line plates, 0.18 starts to).

    Regions under ``TWO_TONE_MIN_PX`` pass unchecked: a far plate's few pixels are too
    blurred to judge, and a small box costs the picture little (the check would cost as
    much time as for a large one)."""
    if (x1 - x0 + 1) * (y1 - y0 + 1) < TWO_TONE_MIN_PX:
        return True
    crop = gray[y0 : y1 + 1, x0 : x1 + 1]
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return True
    _, high = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    n_high = cv2.countNonZero(high)
    if min(n_high, crop.size - n_high) < TWO_TONE_MIN_SHARE * crop.size:
        return False  # one tone, or specks on a ground: no characters
    high_mean, high_std = cv2.meanStdDev(crop, mask=high)
    low_mean, low_std = cv2.meanStdDev(crop, mask=cv2.bitwise_not(high))
    spread = (float(low_std[0, 0]) + float(high_std[0, 0])) / 2
    return spread <= TWO_TONE_MAX * (float(high_mean[0, 0]) - float(low_mean[0, 0]) + 1e-3)


def _drop_contained(boxes: set[Box]) -> list[Box]:
    """Boxes inside another box go: the larger box blurs them with coarser blocks anyway,
    and the passes find one plate several times (the blur is much of the time)."""
    if len(boxes) < 2:
        return list(boxes)
    unique = list(boxes)
    b = np.asarray([(x.x, x.y, x.x + x.w, x.y + x.h) for x in unique], dtype=np.int64)
    inside = (
        (b[:, None, 0] >= b[None, :, 0])
        & (b[:, None, 1] >= b[None, :, 1])
        & (b[:, None, 2] <= b[None, :, 2])
        & (b[:, None, 3] <= b[None, :, 3])
    )
    np.fill_diagonal(inside, False)
    contained = [bool(v) for v in np.asarray(inside.any(axis=1)).ravel()]
    return [box for box, gone in zip(unique, contained, strict=True) if not gone]


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    """Boxes that overlap by MERGE_OVERLAP of the smaller one become their union.

    A plate found twice (rows of two scales, a row and a band) is often covered in two
    offset parts; their union covers it whole, and a later stage that drops one part can
    never leave the other as a partial cover."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                ix = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
                iy = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
                if ix <= 0 or iy <= 0 or ix * iy < MERGE_OVERLAP * min(a.w * a.h, b.w * b.h):
                    continue
                x0, y0 = min(a.x, b.x), min(a.y, b.y)
                x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
                merged[i] = Box(x0, y0, x1 - x0, y1 - y0)
                del merged[j]
                changed = True
                break
            if changed:
                break
    return merged


def _frame_box(
    x0: float, y0: float, x1: float, y1: float, scale: float, frame: Frame
) -> Box | None:
    """A box found at ``scale``, in ``frame``'s pixels and clipped to it (None if empty)."""
    height, width = frame.shape[:2]
    bx0, by0 = max(0, int(x0 / scale)), max(0, int(y0 / scale))
    bx1 = min(width, int(x1 / scale) + 1)
    by1 = min(height, int(y1 / scale) + 1)
    return Box(bx0, by0, bx1 - bx0, by1 - by0) if bx1 > bx0 and by1 > by0 else None


def _row_boxes(
    gray: NDArray[np.uint8], scale: float, frame: Frame, low: int = GLYPH_HEIGHT_PX[0]
) -> dict[Box, Box]:
    """Padded boxes of glyph rows found in ``gray`` (``frame`` resized by ``scale``), of
    glyphs at least ``low`` px high (coarser copies look only for what finer ones cannot),
    each with its core (the glyphs and ``CORE_PAD`` around them)."""
    boxes: dict[Box, Box] = {}
    for block in ADAPTIVE_BLOCKS_PX:
        light = cv2.adaptiveThreshold(
            gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, ADAPTIVE_C
        )
        # The two polarities are exact complements: one threshold, one inversion.
        for binary in (cv2.bitwise_not(light), light):
            lines = cv2.morphologyEx(binary, cv2.MORPH_OPEN, _LINE_KERNEL)
            glyphs = _glyphs(np.asarray(cv2.subtract(binary, lines), dtype=np.uint8), low)
            for x0, y0, x1, y1, glyph_h, slope in _rows(glyphs):
                if not _two_tone(gray, int(x0), int(y0), int(x1), int(y1)):
                    continue
                pad_x, pad_y = PAD_X * glyph_h, PAD_Y * glyph_h
                # Plates are at least MIN_BOX_ASPECT wide: short text (a Thai or US plate's
                # few glyphs) still leaves the plate's whole width covered.
                short = MIN_BOX_ASPECT * (y1 - y0 + 2 * pad_y) - (x1 - x0 + 2 * pad_x)
                pad_x += max(0.0, short / 2)
                # A tilted plate's corners reach beyond its glyphs' rows by the tilt times
                # the horizontal padding (its axis-aligned box is what must be covered).
                pad_y += slope * pad_x
                row = _frame_box(x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y, scale, frame)
                margin = CORE_PAD * glyph_h
                core = _frame_box(x0 - margin, y0 - margin, x1 + margin, y1 + margin, scale, frame)
                if row is not None and core is not None:
                    boxes.setdefault(row, core)
    return boxes


def candidate_boxes(frame: Frame) -> dict[Box, Box]:
    """Every box (frame pixels, padded) the classical passes find, before any box is
    dropped or merged, each with its core: the characters it was grown from, a little
    margin around them (what a learned verifier judges: the core looks alike at every
    size, the padded box holds more or less bumper).

    Raises:
        InputError: ``frame`` is not a BGR uint8 HxWx3 image.
    """
    checked = validate_frame(frame)
    height, width = checked.shape[:2]
    gray, scale = _work_gray(checked)
    boxes: dict[Box, Box] = {}
    row_gray, row_scale = gray, scale
    while True:
        low = GLYPH_HEIGHT_PX[0] if row_scale == scale else COARSE_GLYPH_MIN_PX
        for row, core in _row_boxes(row_gray, row_scale, checked, low).items():
            boxes.setdefault(row, core)
        # Close-up plates have glyphs taller than GLYPH_HEIGHT_PX at the working width:
        # look again at coarser copies, until the copy's glyph limit reaches half the frame.
        if GLYPH_HEIGHT_PX[1] / row_scale >= height / 2 or row_gray.shape[1] <= MIN_ROW_WIDTH_PX:
            break
        row_scale /= ROW_PYRAMID_STEP
        row_gray = _resized(gray, width, height, row_scale)
    for spec in STROKE_PASSES:
        pass_scale = min(1.0, spec.work_width_px / width)
        small = gray if pass_scale == scale else _resized(gray, width, height, pass_scale)
        to_work = scale / pass_scale
        for x, y, w, h, (cx0, cy0, cx1, cy1) in _stroke_bands(small, spec):
            if not _two_tone(
                gray,
                int(cx0 * to_work),
                int(cy0 * to_work),
                int(cx1 * to_work),
                int(cy1 * to_work),
            ):
                continue
            band = _frame_box(x, y, x + w, y + h, pass_scale, checked)
            margin = CORE_PAD * (cy1 - cy0)
            band_core = _frame_box(
                cx0 - margin, cy0 - margin, cx1 + margin, cy1 + margin, pass_scale, checked
            )
            if band is not None and band_core is not None:
                boxes.setdefault(band, band_core)
    return boxes


def merge_boxes(boxes: Iterable[Box]) -> list[Box]:
    """The boxes to blur: boxes inside another dropped, overlapping ones united, sorted
    top to bottom."""
    return sorted(_merge_overlapping(_drop_contained(set(boxes))), key=lambda b: (b.y, b.x))
