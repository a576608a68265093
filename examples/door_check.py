"""Face-recognition door check: detect faces, embed each, identify against an enrolled gallery.

Enroll once from photos of each person (one folder per person), then check
frames from the door camera: a face whose nearest enrolled identity is
within ``--threshold`` (cosine distance) opens the door.

    python examples/door_check.py enroll --detector face_det.onnx --embedder facenet.tflite \
        --embedder-mean 127.5 --embedder-std 128 --people staff/ --gallery staff.gallery
    python examples/door_check.py check --detector face_det.onnx --embedder facenet.tflite \
        --embedder-mean 127.5 --embedder-std 128 --gallery staff.gallery --source 0 --threshold 0.4

The detector defaults fit UltraFace (fixtures: detection/ultraface_rfb_320.onnx). A float-input
embedder needs its normalisation: --embedder-mean/--embedder-std, or stated in the model once
(edgecv annotate facenet.tflite --task embed --mean 127.5 --std 128 -o facenet_annotated.tflite).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgecv.image import IMAGE_SUFFIXES, read_image
from edgecv.sources import FrameReader, open_source
from edgecv.tasks.detector import Detector
from edgecv.tasks.embedder import Embedder
from edgecv.tasks.gallery import Gallery


def face_detector(path: str) -> Detector:
    return Detector(path, score_threshold=0.7, iou_threshold=0.3, form="decoded", background_class=0,
                    score_activation="none", box_format="xyxy", outputs={"boxes": "boxes", "scores": "scores"},
                    preprocessing={"mean": 127.0, "std": 128.0, "color": "rgb"})


def face_crops(detector: Detector, image: np.ndarray, margin: float = 0.15) -> list[tuple[np.ndarray, tuple]]:
    """Crops of every detected face (with a margin), with their boxes in pixels."""
    h, w = image.shape[:2]
    crops = []
    for d in detector.detect(image).detections:
        bw, bh = d.box.x2 - d.box.x1, d.box.y2 - d.box.y1
        x1, y1 = int(max(0, d.box.x1 - margin * bw)), int(max(0, d.box.y1 - margin * bh))
        x2, y2 = int(min(w, d.box.x2 + margin * bw)), int(min(h, d.box.y2 + margin * bh))
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            crops.append((np.ascontiguousarray(image[y1:y2, x1:x2]), (x1, y1, x2, y2)))
    return crops


def face_embedder(path: str, preprocessing: dict | None = None) -> Embedder:
    """The embedder; *preprocessing* (e.g. ``{"mean": 127.5, "std": 128}``) unless the model states it."""
    return Embedder(path, preprocessing=preprocessing)


def enroll(detector_path: str, embedder_path: str, people: str, gallery_path: str,
           embedder_preprocessing: dict | None = None) -> Gallery:
    """One folder per person; the largest face of each photo is enrolled under the folder name."""
    with face_detector(detector_path) as detector, face_embedder(embedder_path, embedder_preprocessing) as embedder:
        gallery = Gallery(embedder)
        for person in sorted(p for p in Path(people).iterdir() if p.is_dir()):
            faces = []
            for photo in sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                crops = face_crops(detector, read_image(photo))
                if crops:
                    faces.append(max(crops, key=lambda c: c[0].shape[0] * c[0].shape[1])[0])
            if faces:
                gallery.enroll(person.name, faces)
        gallery.save(gallery_path, overwrite=True)   # enrolling again replaces the gallery
        return gallery


def check(detector_path: str, embedder_path: str, gallery_path: str, source: str, threshold: float,
          max_frames: int | None = None, embedder_preprocessing: dict | None = None) -> list[dict]:
    """Identify every face of every frame; returns one event per face."""
    events = []
    with face_detector(detector_path) as detector, face_embedder(embedder_path, embedder_preprocessing) as embedder:
        gallery = Gallery.load(gallery_path, embedder=embedder)
        reader = FrameReader(open_source(source), max_frames=max_frames).start()
        try:
            for frame in reader:
                for crop, box in face_crops(detector, frame.image):
                    match = gallery.identify(crop, threshold)
                    events.append({"frame": frame.index, "box": list(box), "open": match is not None,
                                   "name": match[0] if match else None,
                                   "distance": round(match[1], 4) if match else None})
        finally:
            reader.stop()
    return events


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("enroll", "check"):
        p = sub.add_parser(name)
        p.add_argument("--detector", required=True)
        p.add_argument("--embedder", required=True)
        p.add_argument("--gallery", required=True)
        p.add_argument("--embedder-mean", type=float, help="the embedder's input mean on 0..255 pixels")
        p.add_argument("--embedder-std", type=float, help="the embedder's input std on 0..255 pixels")
    sub.choices["enroll"].add_argument("--people", required=True, help="folder with one sub-folder per person")
    sub.choices["check"].add_argument("--source", required=True)
    sub.choices["check"].add_argument("--threshold", type=float, default=0.4)
    sub.choices["check"].add_argument("--max-frames", type=int)
    args = parser.parse_args(argv)
    stated = {k: v for k, v in (("mean", args.embedder_mean), ("std", args.embedder_std)) if v is not None}
    pre = stated or None
    if args.command == "enroll":
        gallery = enroll(args.detector, args.embedder, args.people, args.gallery, pre)
        print(f"enrolled {len(gallery.names)} people into {args.gallery}")
    else:
        for event in check(args.detector, args.embedder, args.gallery, args.source, args.threshold, args.max_frames,
                           pre):
            print(json.dumps(event))


if __name__ == "__main__":
    main()
