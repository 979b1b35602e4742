"""The review page's safety rules, without a browser: loopback by default, a token for any other
address, a free port, one review per exam; each refusal one line that says what to do."""

import os
import socket
import subprocess
import sys

import pytest

from MREFibrosisReview.launch import ExamLock, ReviewError, check_port, is_loopback, make_request, resolve_token


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False), ("reading-room-7", False)],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_tokens(monkeypatch):
    monkeypatch.delenv("MREFIBROSIS_REVIEW_TOKEN", raising=False)
    a, b = resolve_token("127.0.0.1", None), resolve_token("127.0.0.1", None)
    assert a != b and len(a) >= 24  # a fresh random token per page, even on loopback
    with pytest.raises(ReviewError, match="--token"):
        resolve_token("0.0.0.0", None)
    with pytest.raises(ReviewError, match="at least 16"):
        resolve_token("0.0.0.0", "short")
    with pytest.raises(ReviewError, match="without spaces"):
        resolve_token("0.0.0.0", "x" * 20 + "&secret=y")
    assert resolve_token("0.0.0.0", "t" * 20) == "t" * 20
    monkeypatch.setenv("MREFIBROSIS_REVIEW_TOKEN", "e" * 20)
    assert resolve_token("10.0.0.5", None) == "e" * 20


def test_port_checks():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ReviewError, match=f"port {port} on 127.0.0.1 is in use"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again
    check_port("127.0.0.1", 0)
    with pytest.raises(ReviewError, match="not a port number"):
        check_port("127.0.0.1", 70000)


def test_request_checks_the_study_and_roi(tmp_path):
    with pytest.raises(ReviewError, match="is not a folder"):
        make_request(tmp_path / "missing", port=0)
    with pytest.raises(ReviewError, match="does not exist"):
        make_request(tmp_path, port=0, roi_file=tmp_path / "nope.seg.nrrd")
    r = make_request(tmp_path, port=0, out_dir=tmp_path / "out")
    assert r.url(41234).startswith("http://127.0.0.1:41234/?secret=") and r.token in r.url()
    assert make_request(tmp_path, host="::1", port=0).url(5).startswith("http://[::1]:5/")


def test_one_review_per_exam_even_across_processes(tmp_path):
    with ExamLock("abc123", tmp_path):
        with pytest.raises(ReviewError, match="already open in another review page"):
            ExamLock("abc123", tmp_path).acquire()
        ExamLock("other", tmp_path).acquire().release()  # another exam is not blocked
        code = (
            "import sys; from MREFibrosisReview.launch import ExamLock, ReviewError\n"
            "try:\n ExamLock('abc123', sys.argv[1]).acquire()\nexcept ReviewError:\n sys.exit(7)"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        assert subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env).returncode == 7
    with ExamLock("abc123", tmp_path):  # released when the first review ended
        pass
