"""TensorFlow's C++ stderr lines obey TF_CPP_MIN_LOG_LEVEL during conversion; nothing else is held back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from converters._native_logs import hidden_line

REPO = Path(__file__).resolve().parent.parent

# lines TensorFlow 2.21, its converter and the TFLite runtime wrote on this project's conversions
ABSL_INFO = (b"I0000 00:00:1795263290.867197   12886 port.cc:153] oneDNN custom operations are on. You may see "
             b"slightly different numerical results due to floating-point round-off errors.")
ABSL_INFO_CLOCK = b"I1114 09:32:22.280168 13509 tpu_hal.cc:448] Registered plugin from module: sdc_checker_callback"
ABSL_WARNING = b"W0000 00:00:1795263290.867719   12886 cuda_executor.cc:1234] something to look at"
ABSL_ERROR = b"E0000 00:00:1795263290.867719   12886 op_kernel.cc:1857] OP_REQUIRES failed"
BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
XNNPACK = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
QUANTIZER = b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32"


@pytest.mark.parametrize("line, lowest_hiding_level", [
    (ABSL_INFO, 1), (ABSL_INFO_CLOCK, 1), (BANNER, 1), (XNNPACK, 1), (QUANTIZER, 1),
    (ABSL_WARNING, 2), (ABSL_ERROR, 3),
])
def test_each_native_line_is_hidden_from_its_level_on(line, lowest_hiding_level):
    for level in range(4):
        assert hidden_line(line, level) == (level >= lowest_hiding_level), level


@pytest.mark.parametrize("line", [
    b"Traceback (most recent call last):",
    b"Segmentation fault",
    b"error: 'tfl.conv_2d' op is neither a custom op nor a flex op",
    b"The TensorFlow library was compiled to use AVX instructions, but these aren't available on your machine.",
    b"WARNING edgecv.converters: calibrating on only 12 distinct inputs",
    b"  I0000 00:00:1.0 1 port.cc:1] an indented line is not absl's",
    b"fully_quantize: 0, and something else",
    b"",
])
def test_other_lines_always_pass(line):
    assert not any(hidden_line(line, level) for level in range(4))


def _run(code: str, level: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, env=env,
                          timeout=120, cwd=REPO)


WRITES = f"""
    import os, sys
    from converters._native_logs import native_logs_filtered
    os.write(2, b"before\\n")
    with native_logs_filtered():
        os.write(2, {ABSL_INFO!r} + b"\\n")
        os.write(2, b"kept 1\\n" + {XNNPACK!r} + b"\\nkept ")   # a line split across writes
        os.write(2, b"2\\n" + {ABSL_WARNING!r} + b"\\n")
        print("from python", file=sys.stderr)
        os.write(2, b"no newline at the end")
    os.write(2, b"\\nafter\\n")
"""


@pytest.mark.parametrize("level, hidden", [
    ("2", (ABSL_INFO, XNNPACK, ABSL_WARNING)),
    ("1", (ABSL_INFO, XNNPACK)),
    ("0", ()),
])
def test_block_drops_only_what_the_level_hides_and_keeps_order(level, hidden):
    result = _run(WRITES, level)
    assert result.returncode == 0, result.stderr.decode()
    written = [b"before", ABSL_INFO, b"kept 1", XNNPACK, b"kept 2", ABSL_WARNING, b"from python",
               b"no newline at the end", b"after"]
    assert result.stderr.splitlines() == [line for line in written if line not in hidden]


def test_no_level_set_shows_everything():
    result = _run(WRITES, None)
    assert ABSL_INFO in result.stderr and XNNPACK in result.stderr


def test_an_exception_in_the_block_propagates_and_restores_stderr():
    result = _run("""
        import os
        from converters._native_logs import native_logs_filtered
        try:
            with native_logs_filtered():
                os.write(2, b"inside\\n")
                raise KeyError("boom")
        except KeyError as exc:
            os.write(2, b"caught " + str(exc).encode() + b"\\n")
        with native_logs_filtered():             # usable again
            os.write(2, b"second block\\n")
    """, "3")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.splitlines() == [b"inside", b"caught 'boom'", b"second block"]


def test_a_closed_stderr_drops_the_lines_and_raises_nothing():
    result = _run("""
        import os
        from converters._native_logs import native_logs_filtered
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.dup2(write_end, 2)                    # stderr is a pipe nobody reads any more (e.g. "| head" exited)
        with native_logs_filtered():
            os.write(2, b"a line for nobody\\n")
        print("finished")
    """, "2")
    assert result.returncode == 0 and result.stdout.decode().split() == ["finished"]


def test_a_second_thread_passes_through_while_one_block_redirects():
    result = _run("""
        import os, threading
        from converters._native_logs import native_logs_filtered
        inside, done = threading.Event(), threading.Event()

        def other():
            inside.wait()
            pipe = os.fstat(2).st_ino
            with native_logs_filtered():         # descriptor 2 is taken: a pass-through, no second redirect
                os.write(2, b"other thread, same descriptor: %d\\n" % (os.fstat(2).st_ino == pipe))
            done.set()

        t = threading.Thread(target=other)
        t.start()
        with native_logs_filtered():
            inside.set()
            done.wait()
        t.join()
        os.write(2, b"after\\n")
    """, "3")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.splitlines() == [b"other thread, same descriptor: 1", b"after"]


def test_native_code_writing_megabytes_while_holding_the_gil_does_not_hang():
    """As MLIR error dumps can: a pipe would fill and block a writer the forwarder cannot drain without the GIL."""
    result = _run(f"""
        import ctypes, os
        from converters._native_logs import native_logs_filtered
        libc = ctypes.PyDLL(None)                # a PyDLL call keeps the GIL, as native code that logs may
        blob = (b"x" * 1023 + b"\\n") * 2048     # 2 MiB
        notice = {XNNPACK!r} + b"\\n"
        with native_logs_filtered():
            assert libc.write(2, blob, len(blob)) == len(blob)
            libc.write(2, notice, len(notice))
        os.write(2, b"after\\n")
    """, "2")
    assert result.returncode == 0, result.stderr[-2000:].decode()
    lines = result.stderr.splitlines()
    assert len(lines) == 2049 and lines[-1] == b"after" and set(lines[:-1]) == {b"x" * 1023}


def test_importing_tensorflow_for_a_conversion_prints_no_native_notices():
    pytest.importorskip("tensorflow")
    result = _run("""
        from converters._env import import_tensorflow
        import_tensorflow()
        import os
        os.write(2, b"imported\\n")
    """, None)                                   # as a user runs it: edgecv picks level 2
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.splitlines() == [b"imported"]
