"""Benchmark: the memory floor of the daemon's stack, one step at a time, at 1080p.

    .venv/bin/python benchmarks/memory_floor.py [--decoder cv2|av]

In one bare process (no agent running), prints VmRSS, RssAnon and RssFile from
/proc/self/status after each step: the imports the daemon needs, 30 decoded frames of a
1080p MJPG video (the one ``benchmarks/daemon_rss.py`` plays), PyAV, one anonymisation
and one 3 s clip. ``--decoder av`` decodes with PyAV instead of OpenCV, so only one FFmpeg
is in use. Shows what no tuning of the agent can go below (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def memory() -> str:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024
    return (
        f"RSS {fields['VmRSS']:6.1f} MB  anon {fields['RssAnon']:5.1f} MB  "
        f"file {fields['RssFile']:5.1f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decoder", choices=["cv2", "av"], default="cv2")
    args = parser.parse_args()
    print(f"{'interpreter':<34}{memory()}")
    sys.path.insert(0, str(ROOT))
    import cv2
    import numpy as np

    import edge.cli.daemon  # paho, cryptography, the agent
    import edge.shell.agent  # noqa: F401
    from edge.media.plates import blur_plates

    print(f"{'imports':<34}{memory()}")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "street.avi"
        # Written by a child process: drawing the scenes here would raise the floor.
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from benchmarks.daemon_rss import "
                "make_video; make_video(Path(sys.argv[1]), 3)",
                str(video),
            ],
            cwd=ROOT,
            check=True,
        )
        last = None
        if args.decoder == "cv2":
            capture = cv2.VideoCapture(str(video))
            for _ in range(30):
                ok, frame = capture.read()
                if ok:
                    last = frame
            capture.release()
        else:
            import av

            with av.open(str(video)) as container:
                for i, picture in enumerate(container.decode(video=0)):
                    last = picture.to_ndarray(format="bgr24")
                    if i >= 29:
                        break
        if last is None:
            raise SystemExit("error: no frame decoded")
        print(f"{'30 frames decoded (' + args.decoder + ')':<34}{memory()}")
        import av  # the clip encoder's library

        from edge.shell.clip import make_clip

        print(f"{'PyAV imported':<34}{memory()}")
        out = blur_plates(np.asarray(last, np.uint8))
        print(f"{'one 1080p anonymisation':<34}{memory()}")
        make_clip([out] * 30, 10)
        print(f"{'one 3 s clip':<34}{memory()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
