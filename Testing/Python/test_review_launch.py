"""The review page's safety rules, without a browser: loopback by default, a token for any other
address, a free port, one review per exam; each refusal one line that says what to do."""

import os
import socket
import stat
import subprocess
import sys
from types import SimpleNamespace

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
    for bad in ("x" * 20 + "&secret=y", "x" * 20 + "+y", "x" * 20 + "%41", "x" * 20 + " y"):  # would not survive the address
        with pytest.raises(ReviewError, match="A-Z, a-z, 0-9, _ and -"):
            resolve_token("0.0.0.0", bad)
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


def test_lock_folder_is_shared_by_all_readers_and_never_a_symlink(tmp_path):
    folder = tmp_path / "locks"
    ExamLock("k", folder).acquire().release()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1777  # another reader on this computer can lock there too
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ReviewError, match="not a plain folder"):
        ExamLock("k", tmp_path / "link").acquire()


def test_a_server_that_did_not_take_the_token_or_address_is_refused(tmp_path):
    """trame reads its options from sys.argv or $TRAME_ARGS: what it configured is checked before
    the address is printed, so a page is never served behind wslink's public default secret."""
    pytest.importorskip("trame_server")
    from trame_server.protocol import CoreServer

    from MREFibrosisReview.serve import _check_started

    request = make_request(tmp_path, port=0)
    server = SimpleNamespace(server_options=SimpleNamespace(host="127.0.0.1"))
    before = CoreServer.authentication_token
    try:
        CoreServer.authentication_token = request.token
        assert _check_started(server, request) is None
        CoreServer.authentication_token = "wslink-secret"
        assert "access token did not reach the server" in _check_started(server, request)
        CoreServer.authentication_token = request.token
        server.server_options.host = "0.0.0.0"
        assert "would listen on 0.0.0.0, not 127.0.0.1" in _check_started(server, request)
    finally:
        CoreServer.authentication_token = before


def test_it_items_token_file_out_dir_and_printed_address(tmp_path, monkeypatch):
    """Hospital IT: a token from a file (not argv), an unwritable --out refused before serving, and
    an address on all interfaces printed as one another computer can open."""
    from MREFibrosisReview.launch import reachable_host, read_token_file

    token_file = tmp_path / "token"
    token_file.write_text("A" * 24 + "\n")
    assert read_token_file(token_file) == "A" * 24
    (tmp_path / "empty").write_text("")
    with pytest.raises(ReviewError, match="is empty"):
        read_token_file(tmp_path / "empty")
    with pytest.raises(ReviewError, match="cannot read the token file"):
        read_token_file(tmp_path / "missing")

    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    with pytest.raises(ReviewError, match="is not a folder"):
        make_request(tmp_path, port=0, out_dir=blocked / "out")
    monkeypatch.setattr(os, "access", lambda *_: False)  # tests run as root, who may write anywhere
    with pytest.raises(ReviewError, match="is not writable"):
        make_request(tmp_path, port=0, out_dir=tmp_path / "new" / "out")
    monkeypatch.undo()

    r = make_request(tmp_path, host="0.0.0.0", port=0, token="B" * 20, out_dir=tmp_path / "out")
    shown = r.url(8080, with_token=False)
    assert "0.0.0.0" not in shown and shown.endswith(":8080/") and "secret" not in shown
    assert reachable_host("10.2.3.4") == "10.2.3.4"


def test_a_second_review_is_told_where_the_first_one_is(tmp_path):
    with ExamLock("abc123", tmp_path) as first:
        first.publish_address("http://10.0.0.5:8080/")
        with pytest.raises(ReviewError, match=r"at http://10\.0\.0\.5:8080/"):
            ExamLock("abc123", tmp_path).acquire()
    assert not (tmp_path / "abc123.address").exists()


def test_the_cookie_admits_only_this_pages_token_from_this_pages_origin():
    """What a reload presents instead of the token: the page's own cookie, from its own origin (a
    script on another site cannot send it, SameSite; nor pass the Origin check)."""
    import asyncio

    pytest.importorskip("wslink")
    from MREFibrosisReview.access import ConnectionGuard, PageAccess

    access = PageAccess("T" * 24)
    other = PageAccess("U" * 24)
    assert access.cookie_name != other.cookie_name  # two pages on one computer keep their own cookies

    def request(cookie: str | None, origin: str | None, host: str = "127.0.0.1:8080"):
        cookies = {access.cookie_name: cookie} if cookie is not None else {}
        headers = {"Origin": origin} if origin is not None else {}
        return SimpleNamespace(cookies=cookies, headers=headers, host=host)

    assert access.cookie_admits(request("T" * 24, "http://127.0.0.1:8080"))
    assert not access.cookie_admits(request("T" * 24, "http://evil.example"))
    assert not access.cookie_admits(request("U" * 24, "http://127.0.0.1:8080"))
    assert not access.cookie_admits(request(None, "http://127.0.0.1:8080"))

    closed = []
    guard = ConnectionGuard(access, closed.append)
    guard.onConnect(request("T" * 24, "http://127.0.0.1:8080"), "reloaded")
    guard.onConnect(request(None, None), "stranger")
    guard.onConnect(request(None, None), "with-token")
    assert asyncio.run(guard.validateToken("wslink-secret", "reloaded"))  # trame's default secret, with the cookie
    assert not asyncio.run(guard.validateToken("wslink-secret", "stranger"))
    assert asyncio.run(guard.validateToken("T" * 24, "with-token"))
    for client in ("stranger", "reloaded", "with-token"):
        guard.onClose(client)
    assert closed == ["reloaded", "with-token"], "a stranger's connection must not touch the page"
