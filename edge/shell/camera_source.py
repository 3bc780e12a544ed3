"""Shell: reads a real video source (V4L2 index, RTSP URL or file) into the agent's queue.

A thread reads frames through ``edge.shell.camera`` (OpenCV), keeps the last few seconds
for the event clip, runs the pure motion detector and puts a ``MotionAlarm`` on the
agent's queue when it fires. Status telemetry is due once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from edge.config import AgentConfig
from edge.errors import InputError
from edge.inputs import MotionAlarm
from edge.media.preview import EncodedFrames, encode_preview
from edge.model import Count
from edge.motion import MotionState, detect_motion
from edge.shell.camera import FrameSource, open_source
from edge.shell.clock import SystemClock

if TYPE_CHECKING:
    from edge.shell.agent import Agent

logger = logging.getLogger(__name__)

MAX_PENDING_EVENTS = 2  # backpressure: alarms carry frames; never let them pile up
RETRY_FIRST_S = 0.5  # a camera that drops is reopened after this, doubling per failure
RETRY_MAX_S = 30.0


def parse_source(text: str) -> int | str:
    """``"0"`` is a V4L2 device index; anything else is a URL or a file path."""
    return int(text) if text.isdigit() else text


class CameraReader:
    def __init__(self, config: AgentConfig, agent: Agent) -> None:
        self._config = config
        self._agent = agent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def start(self) -> CameraReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        """Read until stopped; a live source that fails or drops is reopened with backoff.

        A file ends at its end. Each outage of a live source is counted
        (``camera_gaps``) and logged once; nothing is sent while no frame arrives, and the
        clip buffer and motion state start afresh, so no frame crosses a gap.
        """
        delay = RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                source = open_source(parse_source(self._config.media.source))
            except InputError as err:
                logger.error("camera: %s; retrying in %.1f s", err, delay)
                self._agent.counters[Count.CAMERA_OPEN_FAILURES] += 1
                if self._stop.wait(delay):
                    return
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            delay = RETRY_FIRST_S
            if self._read(source) or source.is_file:
                return
            self._agent.counters[Count.CAMERA_GAPS] += 1
            logger.warning("camera: stream lost; reconnecting in %.1f s", delay)
            if self._stop.wait(delay):
                return

    def _read(self, source: FrameSource) -> bool:
        """Frames until the stream ends (False) or ``stop`` (True)."""
        clock = SystemClock()
        media = self._config.media
        clip_len = max(1, round(media.clip_seconds * media.clip_fps))
        keep_every = max(1, round(source.fps / media.clip_fps))
        recent: deque[bytes] = deque(maxlen=clip_len)  # JPEG previews (edge.media.preview)
        state = MotionState()
        period = 1.0 / source.fps
        next_frame = time.monotonic()
        count = 0
        try:
            while not self._stop.is_set():
                frame = source.read()
                if frame is None:
                    logger.info("camera: end of stream")
                    return False
                count += 1
                if count % keep_every == 0:
                    recent.append(encode_preview(frame))
                state, fired = detect_motion(state, frame)
                if fired and self._agent.events.qsize() < MAX_PENDING_EVENTS:
                    self._agent.events.put(MotionAlarm(clock.now(), frame, EncodedFrames(recent)))
                elif fired:
                    logger.warning("camera: agent busy, alarm dropped (counted)")
                    self._agent.counters[Count.ALARMS_DROPPED_BUSY] += 1
                if source.is_file:
                    # A file plays at its own frame rate, as a camera would deliver it.
                    next_frame += period
                    time.sleep(max(0.0, next_frame - time.monotonic()))
            return True
        finally:
            source.close()


def start_camera(config: AgentConfig, agent: Agent) -> CameraReader:
    return CameraReader(config, agent).start()
