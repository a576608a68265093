"""How the files in this folder were made: run at commit 8b2c8f3 (edgecv before typed heads).

    PYTHONPATH=<checkout of 8b2c8f3> python tests/data/manifest_v1/generate.py OUT_DIR

Two untrained reference models (deterministic weights, seed 0), converted by that
edgecv to fp32 TFLite and ONNX with its manifest embedded, and what that edgecv's
tasks returned on a few synthetic images (expected.json). tests/test_manifest_v1.py
checks that today's edgecv reads the same manifests and returns the same results.
"""

import json
import sys
from pathlib import Path

import numpy as np

import converters
from converters import reference
from edgecv.tasks.classifier import Classifier
from edgecv.tasks.detector import Detector


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = reference.make_data("detection", 6, seed=3)
    expected = {}
    for family, task_class, kwargs in (("detection", Detector, {"score_threshold": 0.005}),
                                        ("classification", Classifier, {"top_k": 3})):
        model = reference.build(family, width=8, seed=0)
        options = reference.convert_options(family)
        if family == "detection":
            options["head"] = {**options["head"], "score_threshold": 0.45, "max_detections": 10}
        result = converters.convert(model, target="cpu", precision="fp32", output_dir=out, name=f"{family}_v1",
                                    write_report=False, **options)
        for artifact in result.artifacts:
            name = Path(artifact.path).name
            with task_class(artifact.path, **kwargs) as task:
                expected[name] = {"kwargs": kwargs,
                                  "results": [task(img, color="rgb").to_dict() for img in data.images]}
    np.save(out / "images.npy", np.stack(data.images))
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
