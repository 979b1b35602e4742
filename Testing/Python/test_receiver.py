"""The plain DICOM receiver (storage SCP): allow-list, SOP classes, aborts, and results to a real PACS."""

import os
import re
import subprocess
import time

import pydicom
import pytest
from model_fixtures import train_tiny_model
from orthanc_server import OrthancServer, free_port, have_orthanc

from mrefibrosis.model.inference import Segmenter
from mrefibrosis.pacs.receiver import Receiver, ReceiverConfig

pytestmark = pytest.mark.skipif(not have_orthanc() and not os.environ.get("CI"), reason="Orthanc and dcmtk not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny_scp"), n_exams=3, steps=60, seed=3)


@pytest.fixture()
def setup(tmp_path, tiny):
    orthanc = OrthancServer(tmp_path / "orthanc").start()
    cfg = ReceiverConfig(
        port=free_port(),
        allowed_calling_aes=["SCANNER"],
        quiet_seconds=1.0,
        spool_dir=str(tmp_path / "spool"),
        destination={"ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc.dicom_port},
    )
    receiver = Receiver(cfg, segmenter=Segmenter(tiny[0], device="cpu")).start()
    yield receiver, orthanc, tiny
    receiver.stop()
    orthanc.stop()


def _storescu(port, folder, aet="SCANNER"):
    return subprocess.run(
        ["storescu", "-aet", aet, "-aec", "MREFIBROSIS", "+sd", "+r", "127.0.0.1", str(port), str(folder)], capture_output=True, text=True, timeout=120
    )


def _wait(receiver, n, timeout=60):
    deadline = time.time() + timeout
    while len(receiver.processed) < n and time.time() < deadline:
        time.sleep(0.2)
    assert len(receiver.processed) >= n, receiver.processed


def test_exam_results_reach_the_destination(setup):
    receiver, orthanc, tiny = setup
    assert _storescu(receiver.config.port, tiny[1][0] / "dicom").returncode == 0
    _wait(receiver, 1)
    assert receiver.processed[-1][1] == "done"
    modalities = [s["MainDicomTags"].get("Modality") for st in orthanc.get("/studies") for s in orthanc.get(f"/studies/{st}/series")]
    assert sorted(modalities) == ["OT", "SEG", "SR"]
    # the spool only ever held hashed folder names and counter file names
    assert all(re.fullmatch(r"[0-9a-f]{16}(\.out)?", p.name) for p in (receiver.spool).iterdir()) or not any(receiver.spool.iterdir())


def test_unknown_calling_ae_is_refused(setup):
    receiver, _, tiny = setup
    proc = _storescu(receiver.config.port, tiny[1][0] / "dicom" / "series_0500", aet="INTRUDER")
    assert proc.returncode != 0
    time.sleep(1.5)
    assert receiver.processed == [] and not any(receiver.spool.iterdir())


def test_unsupported_sop_class_and_aborted_association(setup, tmp_path):
    from pynetdicom import AE

    receiver, orthanc, tiny = setup
    files = sorted((tiny[1][0] / "dicom" / "series_0500").iterdir())
    ct = pydicom.dcmread(files[0])
    ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage: not accepted
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4")
    assoc = ae.associate("127.0.0.1", receiver.config.port, ae_title="MREFIBROSIS")
    assert assoc.is_established
    assert not [c for c in assoc.accepted_contexts if c.abstract_syntax == "1.2.840.10008.5.1.4.1.1.2"]
    with pytest.raises(ValueError):
        assoc.send_c_store(ct)
    # an association aborted in the middle of an exam
    status = assoc.send_c_store(pydicom.dcmread(files[1]))
    assert status.Status == 0
    assoc.abort()
    # the receiver keeps working: the whole exam sent again is processed
    assert _storescu(receiver.config.port, tiny[1][0] / "dicom").returncode == 0
    _wait(receiver, 1)
    assert receiver.processed[-1][1] == "done"


def test_received_files_are_stored_byte_exact(tmp_path, ge_exam):
    """What the scanner sent is what lands in the spool: the dataset bytes, not a re-encoding."""
    cfg = ReceiverConfig(port=free_port(), allowed_calling_aes=["SCANNER"], quiet_seconds=3600.0, spool_dir=str(tmp_path / "spool"))
    receiver = Receiver(cfg).start()
    try:
        # a public element sent with VR UN, as some gateways do: pydicom reads it with its dictionary
        # VR, so a decode and re-encode would change its bytes
        source = tmp_path / "sent.dcm"
        ds = pydicom.dcmread(sorted((ge_exam.path / "series_0500").iterdir())[0])
        ds[0x00181030] = pydicom.DataElement(0x00181030, "UN", b"MRE LIVER ")
        ds.save_as(source, enforce_file_format=True)
        done = subprocess.run(
            ["storescu", "-aet", "SCANNER", "-aec", "MREFIBROSIS", "-xe", "127.0.0.1", str(cfg.port), str(source)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        stored = [p for p in (tmp_path / "spool").rglob("*.dcm") if not p.name.startswith(".")]
        assert len(stored) == 1
    finally:
        receiver.stop()

    def dataset_bytes(path):
        raw = path.read_bytes()
        assert raw[128:132] == b"DICM"
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        group2_end = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
        return raw[group2_end:], str(ds.file_meta.TransferSyntaxUID)

    sent, sent_ts = dataset_bytes(source)
    got, got_ts = dataset_bytes(stored[0])
    assert got_ts == sent_ts == "1.2.840.10008.1.2.1"
    assert got == sent
