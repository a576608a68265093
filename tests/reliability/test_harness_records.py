"""The fuzz harness reads only finished records while a worker is still appending (the race of issue 21)."""

from __future__ import annotations

import json
import os

from .harness import _read_results, complete_records
from .worker import write_record


def test_a_half_written_result_line_is_not_read(tmp_path):
    path = tmp_path / "results.txt"
    whole = f"R 0 {json.dumps(['edgecv', 'ModelLoadError: é truncated'])}\n".encode()
    path.write_bytes(b"B 0\n" + whole + b"B 1\n" + whole.replace(b"R 0", b"R 1")[:-9])  # cut inside the JSON
    done, in_flight, looping = _read_results(path)
    assert done == {0: ("edgecv", "ModelLoadError: é truncated")}
    assert in_flight == 1 and not looping


def test_a_cut_inside_a_utf8_sequence_or_before_any_newline_reads_nothing_partial():
    assert complete_records(b"B 0") == []
    text = "R 0 [\"ok\", \"é\"]\n".encode()
    assert complete_records(b"B 0\n" + text[:-4]) == ["B 0"]


def test_worker_records_end_in_one_newline_even_when_the_text_holds_one(tmp_path):
    path = tmp_path / "results.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        write_record(fd, "B 3")
        write_record(fd, "R 3 " + json.dumps(["other", "line one\nline two"]))
    finally:
        os.close(fd)
    assert complete_records(path.read_bytes()) == ["B 3", 'R 3 ["other", "line one\\nline two"]']
