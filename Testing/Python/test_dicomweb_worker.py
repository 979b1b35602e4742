"""The worker on DICOMweb (QIDO-RS, WADO-RS, STOW-RS through dicomweb-client) against a real Orthanc
with its DICOMweb plugin and HTTP basic auth, exams pushed by dcmtk's storescu."""

import json
import os

import pytest
from orthanc_server import OrthancServer, first_job_then_outage, have_dicomweb_plugin, until_idle

from mrefibrosis.cli import main
from mrefibrosis.model.inference import Segmenter
from mrefibrosis.pacs.http_session import AuthSettings, make_session
from mrefibrosis.pacs.jobs import DONE, IGNORED
from mrefibrosis.pacs.worker import PacsWorker, WorkerConfig

pytestmark = pytest.mark.skipif(not have_dicomweb_plugin() and not os.environ.get("CI"), reason="Orthanc's DICOMweb plugin not installed")

USER, SECRET, ENV = "mrefibrosis", "s3cret-for-tests", "MREFIBROSIS_TEST_PACS_PASSWORD"


@pytest.fixture()
def pacs(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, SECRET)
    server = OrthancServer(tmp_path / "orthanc", dicomweb=True, users={USER: SECRET}).start()
    yield server
    server.stop()


def _config(pacs, tmp_path, **extra) -> WorkerConfig:
    base = dict(
        source="dicomweb",
        dicomweb_url=pacs.dicomweb_url,
        auth={"type": "basic", "username": USER, "password_env": ENV},
        stable_seconds=1.0,
        lookback_days=None,
        jobs_db=str(tmp_path / "jobs.sqlite"),
        poll_seconds=0.2,
    )
    base.update(extra)
    return WorkerConfig(**base)


def _worker(pacs, tiny_model, tmp_path, **extra):
    return PacsWorker(_config(pacs, tmp_path, **extra), segmenter=Segmenter(tiny_model[0], device="cpu"))


def _qido_series(pacs):
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(pacs.dicomweb_url, session=make_session(AuthSettings("basic", USER, password_env=ENV)))
    out = []
    for study in client.search_for_studies():
        uid = study["0020000D"]["Value"][0]
        for s in client.search_for_series(uid, fields=["Modality"]):
            out.append((uid, s["00080060"]["Value"][0]))
    return out


def test_study_found_by_qido_processed_once_results_stored_by_stow(pacs, tiny_model, tmp_path):
    exam = tiny_model[1][0] / "dicom"
    worker = _worker(pacs, tiny_model, tmp_path)
    pacs.store(exam)
    until_idle(worker)
    series = _qido_series(pacs)
    modalities = sorted(m for _, m in series)
    assert modalities.count("SEG") == 1 and modalities.count("SR") == 1 and modalities.count("OT") == 1
    assert len({uid for uid, _ in series}) == 1  # results went into the exam's own study
    assert [j.state for j in worker.jobs.all()] == [DONE]
    instances = len(pacs.get("/instances"))
    # the same exam sent again: not processed again, nothing duplicated
    pacs.store(exam)
    assert until_idle(worker) == []
    assert len(pacs.get("/instances")) == instances
    assert [j.state for j in worker.jobs.all()] == [DONE]
    # and the password never reached the job store or the worker's description
    assert SECRET not in json.dumps([vars(j) for j in worker.jobs.all()]) and SECRET not in worker.source.name


def test_wrong_credentials_give_one_line_naming_the_setting(pacs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV, "wrong")
    cfg = tmp_path / "worker.json"
    cfg.write_text(
        json.dumps(
            {
                "source": "dicomweb",
                "dicomweb_url": pacs.dicomweb_url,
                "auth": {"type": "basic", "username": USER, "password_env": ENV},
                "jobs_db": str(tmp_path / "jobs.sqlite"),
                "model": str(tmp_path / "unused.mrefmodel"),
            }
        )
    )
    from mrefibrosis.model import inference

    monkeypatch.setattr(inference, "Segmenter", lambda *a, **k: None)  # credentials are checked before any model is needed
    assert main(["worker", "--config", str(cfg), "--once"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "401" in err and "'auth'" in err and "wrong" not in err
    # a secret written into the config itself is refused
    cfg.write_text(json.dumps({"source": "dicomweb", "dicomweb_url": pacs.dicomweb_url, "auth": {"type": "basic", "username": USER, "password": "x"}}))
    assert main(["worker", "--config", str(cfg), "--once"]) == 2
    assert "environment variable or a file" in capsys.readouterr().err


def test_server_away_mid_job_is_retried_without_duplicates(pacs, tiny_model, tmp_path):
    first_job_then_outage(pacs, _worker(pacs, tiny_model, tmp_path), tiny_model[1][1] / "dicom")
    worker2 = _worker(pacs, tiny_model, tmp_path)
    worker2.jobs.db.execute("UPDATE jobs SET next_try = 0")
    until_idle(worker2)
    assert [j.state for j in worker2.jobs.all()] == [DONE]
    modalities = sorted(m for _, m in _qido_series(pacs))
    assert modalities.count("SEG") == 1 and modalities.count("SR") == 1


def test_more_studies_than_one_page(pacs, tiny_model, tmp_path):
    """Five studies (raw images only, so each is found and ignored quickly) with two per QIDO page."""
    worker = _worker(pacs, tiny_model, tmp_path, page_size=2)
    for exam in tiny_model[1][:5]:
        raw = exam / "dicom" / "series_0501"  # GE MR-Touch raw images; Siemens-style exams: magnitude
        pacs.store(raw if raw.is_dir() else exam / "dicom" / "series_0010")
    until_idle(worker)
    jobs = worker.jobs.all()
    assert len(jobs) == 5 and {j.state for j in jobs} == {IGNORED}


def test_study_that_grows_after_processing_is_processed_again_without_duplicates(pacs, tiny_model, tmp_path):
    import pydicom

    exam = tiny_model[1][0] / "dicom"
    worker = _worker(pacs, tiny_model, tmp_path)
    pacs.store(exam)
    until_idle(worker)
    assert [j.state for j in worker.jobs.all()] == [DONE]
    # a late series arrives in the same study (a new SeriesInstanceUID, e.g. a re-sent magnitude series)
    late = tmp_path / "late"
    late.mkdir()
    files = sorted((exam / "series_0501").iterdir())
    new_series = pydicom.uid.generate_uid()
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SeriesNumber = new_series, pydicom.uid.generate_uid(), 601
        ds.save_as(late / f.name, enforce_file_format=True)
    pacs.store(late)
    assert [outcome for _, outcome in until_idle(worker)] == [DONE]  # processed again, once
    job = worker.jobs.all()[0]
    assert job.state == DONE and len(worker.jobs.all()) == 1
    modalities = sorted(m for _, m in _qido_series(pacs))
    assert modalities.count("SEG") == 1 and modalities.count("SR") == 1  # the same results, replaced, not added
