"""`edgecv demo --quick` end to end: a report row with numbers for every family x target artifact."""

import re

import pytest

pytest.importorskip("tensorflow")

from edgecv.cli import main  # noqa: E402
from edgecv.cli.demo import FAMILIES, TARGETS  # noqa: E402

NUMBER = r"-?\d+(\.\d+)?"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_report_has_a_numeric_row_for_every_artifact(demo_out):
    md = (demo_out / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| target")]
    seen = 0
    for family in FAMILIES:
        for target in TARGETS:
            folder = demo_out / family / target
            artifacts = sorted(p.name for p in folder.iterdir() if p.suffix in (".tflite", ".onnx"))
            assert artifacts, (family, target)
            for name in artifacts:
                row = next(r for r in rows if f" {name} " in r or f" {name} (ship)" in r)
                cells = [c.strip() for c in row.strip("|").split("|")]
                assert cells[0] == target
                target_, artifact, precision, size, accuracy, delta, agreement, p50, p99, check = cells
                assert re.fullmatch(rf"{NUMBER} (MB|kB)", size)
                assert re.search(NUMBER, accuracy) and "n/a" not in accuracy, row
                assert re.fullmatch(rf"[+-]{NUMBER} pt", delta), row
                assert re.fullmatch(rf"{NUMBER}%", agreement), row
                if not name.endswith("_edgetpu.tflite"):
                    assert float(p50) > 0 and float(p99) >= float(p50), row
                assert re.fullmatch(r"ok|\d+ warnings|\d+ errors", check.split(";")[0]), row
                seen += 1
    assert seen == len(rows)  # nothing but artifacts in the tables


@pytest.mark.slow
def test_each_target_has_one_recommended_artifact_and_embedded_images(demo_out):
    md = (demo_out / "report.md").read_text()
    for family in FAMILIES:
        section = md.split("## ")[1 + FAMILIES.index(family)]
        shipped = [line for line in section.splitlines() if "(ship)" in line]
        assert {line.strip("|").split("|")[0].strip() for line in shipped} <= set(TARGETS)
        assert (demo_out / family / "latency.png").stat().st_size > 1000
        assert (demo_out / family / "overlay_0.jpg").stat().st_size > 1000
    page = (demo_out / "report.html").read_text()
    assert page.count("src='data:image/") >= 2 * len(FAMILIES)


@pytest.mark.slow
def test_unknown_family_and_target_are_one_line_errors(tmp_path, capsys):
    assert main(["demo", "--quick", "--families", "clasification", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'classification'" in err[0]
    assert main(["demo", "--quick", "--targets", "rpi", "--out", str(tmp_path)]) == 3
    assert "rpi4" in capsys.readouterr().err
