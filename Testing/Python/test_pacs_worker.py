"""The Orthanc worker against a real Orthanc on loopback, with exams pushed by dcmtk's storescu."""

import os

import pytest
from model_fixtures import train_tiny_model
from orthanc_server import OrthancServer, first_job_then_outage, have_orthanc, until_idle

from mrefibrosis.model.inference import Segmenter
from mrefibrosis.pacs.jobs import DONE, IGNORED
from mrefibrosis.pacs.worker import OrthancWorker, WorkerConfig

pytestmark = pytest.mark.skipif(not have_orthanc() and not os.environ.get("CI"), reason="Orthanc and dcmtk not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny_pacs"), n_exams=4, steps=60, seed=2)


@pytest.fixture()
def orthanc(tmp_path):
    server = OrthancServer(tmp_path / "orthanc").start()
    yield server
    server.stop()


def _worker(orthanc, tiny, tmp_path):
    cfg = WorkerConfig(orthanc_url=orthanc.url, jobs_db=str(tmp_path / "jobs.sqlite"), poll_seconds=0.2)
    return OrthancWorker(cfg, segmenter=Segmenter(tiny[0], device="cpu"))


def _series_modalities(orthanc):
    out = []
    for study in orthanc.get("/studies"):
        for s in orthanc.get(f"/studies/{study}/series"):
            out.append(s["MainDicomTags"].get("Modality"))
    return sorted(out)


def test_exam_gets_seg_sr_overlay_once(orthanc, tiny, tmp_path):
    exam = tiny[1][0] / "dicom"
    worker = _worker(orthanc, tiny, tmp_path)
    orthanc.store(exam)
    until_idle(worker)
    modalities = _series_modalities(orthanc)
    assert modalities.count("SEG") == 1 and modalities.count("SR") == 1 and modalities.count("OT") == 1
    assert [j.state for j in worker.jobs.all()] == [DONE]
    instances = len(orthanc.get("/instances"))
    # the same exam sent again: no duplicates
    orthanc.store(exam)
    until_idle(worker)
    assert len(orthanc.get("/instances")) == instances
    assert _series_modalities(orthanc) == modalities


def test_non_mre_study_is_ignored_and_worker_goes_on(orthanc, tiny, tmp_path):
    worker = _worker(orthanc, tiny, tmp_path)
    orthanc.store(tiny[1][0] / "dicom" / "series_0501")  # raw MR-Touch images only: no elastogram
    orthanc.store(tiny[1][2] / "dicom")
    until_idle(worker)
    states = sorted(j.state for j in worker.jobs.all())
    assert states == sorted([IGNORED, DONE])


def test_pacs_down_during_a_job_then_back(orthanc, tiny, tmp_path):
    first_job_then_outage(orthanc, _worker(orthanc, tiny, tmp_path), tiny[1][0] / "dicom")
    # a restarted worker (new process state, same job database) finishes the job
    worker2 = _worker(orthanc, tiny, tmp_path)
    worker2.jobs.db.execute("UPDATE jobs SET next_try = 0")
    until_idle(worker2)
    assert [j.state for j in worker2.jobs.all()] == [DONE]
    assert "SEG" in _series_modalities(orthanc)


def test_config_files_refuse_unknown_keys(tmp_path):
    import json

    from mrefibrosis.errors import MREFibrosisError
    from mrefibrosis.pacs.receiver import ReceiverConfig

    f = tmp_path / "w.json"
    f.write_text(json.dumps({"orthanc_url": "http://127.0.0.1:9", "poll_secnds": 1}))
    with pytest.raises(MREFibrosisError, match="poll_secnds"):
        WorkerConfig.load(f)
    f.write_text(json.dumps({"port": 11112, "allowed_calling_aes": ["MR1"]}))
    assert ReceiverConfig.load(f).allowed_calling_aes == ["MR1"]
