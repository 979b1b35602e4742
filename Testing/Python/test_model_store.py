"""The model's weights fetched where they were not shipped (the Slicer extension, ADR 0007): from a
real HTTP server on loopback and from a file, accepted only with the shipped SHA-256, never left
half-written, and found by the default-model lookup afterwards."""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from mrefibrosis.cli import main
from mrefibrosis.model import model_store
from mrefibrosis.model.model_file import CHECKSUMS, load_model_file
from mrefibrosis.model.onnx_format import graph_path_for, int8_graph_path_for

SHIPPED = model_store.PACKAGED_DIR / model_store.MODEL_NAME


class _Files(http.server.SimpleHTTPRequestHandler):
    cut_after: int | None = None  # bytes after which the connection is dropped

    def log_message(self, *_):
        pass

    def copyfile(self, source, outputfile):
        if self.cut_after is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(self.cut_after))
        self.connection.shutdown(2)  # a dropped download


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Handler(_Files):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", Handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def extension_install(tmp_path, monkeypatch):
    """The package as the Slicer extension installs it: SHA256SUMS and the graphs, no weights."""
    if not SHIPPED.is_file():
        pytest.skip("the shipped model is not in this checkout")
    pkg = tmp_path / "weights"
    pkg.mkdir()
    for f in (SHIPPED.parent / CHECKSUMS, graph_path_for(SHIPPED), int8_graph_path_for(SHIPPED)):
        shutil.copy(f, pkg / f.name)
    monkeypatch.setattr(model_store, "PACKAGED_DIR", pkg)
    monkeypatch.setenv(model_store.DIR_ENV, str(tmp_path / "user-models"))
    monkeypatch.delenv("MREFIBROSIS_MODEL", raising=False)
    return tmp_path / "user-models"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_over_http_installs_a_verified_model_the_default_lookup_finds(extension_install, server):
    from mrefibrosis.errors import MREFibrosisError
    from mrefibrosis.model.inference import Segmenter, default_model_path

    root, base, _ = server
    shutil.copy(SHIPPED, root / model_store.MODEL_NAME)
    assert model_store.installed_model() is None
    with pytest.raises(MREFibrosisError, match="fetch-model"):
        Segmenter(runtime="onnx", device="cpu")

    seen = []
    path = model_store.fetch_model(f"{base}/{model_store.MODEL_NAME}", progress=lambda done, total: seen.append((done, total)))
    assert path == extension_install / model_store.MODEL_NAME and default_model_path() == path
    assert seen[-1] == (SHIPPED.stat().st_size, SHIPPED.stat().st_size)
    assert set(_leftovers(extension_install)) == {model_store.MODEL_NAME, CHECKSUMS, graph_path_for(SHIPPED).name, int8_graph_path_for(SHIPPED).name}
    load_model_file(path)  # verified against the SHA256SUMS beside it
    segmenter = Segmenter(runtime="onnx", device="cpu")
    assert segmenter.path == path and segmenter.runtime == "onnx"


def test_a_wrong_or_cut_download_installs_nothing(extension_install, server):
    root, base, handler = server
    (root / "other.mrefmodel").write_bytes(b"not the model" * 1000)
    with pytest.raises(model_store.ModelFetchError, match="not this version's model"):
        model_store.fetch_model(f"{base}/other.mrefmodel")
    assert _leftovers(extension_install) == []

    with pytest.raises(model_store.ModelFetchError, match="answered 404"):
        model_store.fetch_model(f"{base}/missing.mrefmodel")

    shutil.copy(SHIPPED, root / model_store.MODEL_NAME)
    handler.cut_after = 5_000_000
    try:
        with pytest.raises(model_store.ModelFetchError):
            model_store.fetch_model(f"{base}/{model_store.MODEL_NAME}", timeout_s=10)
    finally:
        handler.cut_after = None
    assert model_store.MODEL_NAME not in _leftovers(extension_install) and not any(n.endswith(".partial") for n in _leftovers(extension_install))


def test_offline_install_from_a_file_and_one_line_errors(extension_install, tmp_path, capsys):
    assert main(["-q", "fetch-model", "--from", str(SHIPPED)]) == 0
    assert (extension_install / model_store.MODEL_NAME).is_file()
    assert "the model is installed" in capsys.readouterr().out
    assert main(["-q", "fetch-model"]) == 0  # already there: nothing fetched

    assert main(["-q", "fetch-model", "--from", str(tmp_path / "nope.mrefmodel"), "--dir", str(tmp_path / "d2")]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot read" in err[0]
    assert main(["-q", "fetch-model", "--url", "http://127.0.0.1:9/x", "--dir", str(tmp_path / "d3")]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "--from FILE" in err[0]


def test_the_panels_fetch_asks_only_when_needed_and_can_be_cancelled(extension_install, server):
    """The Lib piece the Slicer panel delegates to (its dialog runs only inside Slicer)."""
    from MREFibrosisLib.model_weights import FetchCancelled, consent_text, fetch_weights, weights_missing

    root, base, _ = server
    shutil.copy(SHIPPED, root / model_store.MODEL_NAME)
    assert weights_missing("") and not weights_missing("/a/chosen/model.mrefmodel")
    assert "64 MB" in consent_text() and "--from FILE" in consent_text()
    with pytest.raises(FetchCancelled):
        fetch_weights(lambda done, total: done < 3_000_000, f"{base}/{model_store.MODEL_NAME}")
    left = _leftovers(extension_install)
    assert weights_missing("") and model_store.MODEL_NAME not in left and not any(n.endswith(".partial") for n in left)
    assert fetch_weights(lambda *_: True, f"{base}/{model_store.MODEL_NAME}").is_file()
    assert not weights_missing("")
