"""Smart-camera counter: count faces (or people) crossing a line in a video.

Detector + NMS + a simple IoU tracker; a track that moves its centre across
the counting line is counted once per crossing, in its direction.

    python examples/people_counter.py face_detector.onnx --source entrance.mp4 --line x=0.5

The defaults fit UltraFace (detection/ultraface_rfb_320.onnx from the fixtures):
decoded boxes + softmax scores, RGB, (x - 127) / 128, score 0.7, IoU 0.3.
A model converted by edgecv carries all of that in its manifest.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

import numpy as np

import edgecv
from edgecv.boxes import box_iou
from edgecv.sources import FrameReader, open_source
from edgecv.tasks.detector import Detector


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    missed: int = 0
    centres: list = field(default_factory=list)


class IoUTracker:
    """Greedy IoU matching of detections to tracks; unmatched tracks expire after *max_missed* frames."""

    def __init__(self, iou_match: float = 0.3, max_missed: int = 5) -> None:
        self.iou_match, self.max_missed = iou_match, max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, boxes: np.ndarray) -> list[Track]:
        matched_tracks, matched_boxes = set(), set()
        if self.tracks and len(boxes):
            iou = box_iou(np.array([t.box for t in self.tracks]), boxes)
            for flat in np.argsort(-iou, axis=None):
                ti, bi = divmod(int(flat), iou.shape[1])
                if iou[ti, bi] < self.iou_match:
                    break
                if ti in matched_tracks or bi in matched_boxes:
                    continue
                matched_tracks.add(ti)
                matched_boxes.add(bi)
                self.tracks[ti].box, self.tracks[ti].missed = boxes[bi], 0
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for bi in range(len(boxes)):
            if bi not in matched_boxes:
                self.tracks.append(Track(self._next_id, boxes[bi]))
                self._next_id += 1
        for t in self.tracks:
            if t.missed == 0:
                t.centres.append(((t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2))
        return self.tracks


class LineCounter:
    """Counts centre crossings of a vertical (``x=``) or horizontal (``y=``) line at a fraction of the frame."""

    def __init__(self, spec: str) -> None:
        axis, _, value = spec.partition("=")
        if axis not in ("x", "y") or not value:
            raise edgecv.ConfigError(f"--line must look like x=0.5 or y=0.3, got {spec!r}")
        self.axis, self.fraction = (0 if axis == "x" else 1), float(value)
        self.forward = self.backward = 0  # forward: increasing coordinate (right / down)
        self._seen: dict[int, int] = {}

    def update(self, tracks: list[Track], width: int, height: int) -> None:
        line = self.fraction * (width if self.axis == 0 else height)
        for t in tracks:
            if len(t.centres) < 2 or t.missed:
                continue
            before, now = t.centres[-2][self.axis], t.centres[-1][self.axis]
            if before < line <= now:
                self.forward += 1
            elif now < line <= before:
                self.backward += 1


def count(model: str, source: str, *, line: str = "x=0.5", score: float = 0.7, iou: float = 0.3,
          max_frames: int | None = None) -> dict:
    """Run the counter; returns {"frames", "forward", "backward", "tracks"}."""
    detector = Detector(model, score_threshold=score, iou_threshold=iou, form="decoded", background_class=0,
                        score_activation="none", box_format="xyxy", outputs={"boxes": "boxes", "scores": "scores"},
                        preprocessing={"mean": 127.0, "std": 128.0, "color": "rgb"})
    tracker, counter = IoUTracker(), LineCounter(line)
    reader = FrameReader(open_source(source), max_frames=max_frames).start()
    frames = 0
    try:
        for frame in reader:
            result = detector.detect(frame.image)
            boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in result.detections]).reshape(-1, 4)
            counter.update(tracker.update(boxes), frame.image.shape[1], frame.image.shape[0])
            frames += 1
    finally:
        reader.stop()
        detector.close()
    return {"frames": frames, "forward": counter.forward, "backward": counter.backward, "tracks": tracker._next_id}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--source", required=True, help="video file or camera index")
    parser.add_argument("--line", default="x=0.5", help="counting line: x=FRACTION (vertical) or y=FRACTION")
    parser.add_argument("--score", type=float, default=0.7)
    parser.add_argument("--iou", type=float, default=0.3)
    parser.add_argument("--max-frames", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(count(args.model, args.source, line=args.line, score=args.score, iou=args.iou,
                           max_frames=args.max_frames)))


if __name__ == "__main__":
    main()
