"""A real Orthanc on loopback for tests: own config, temporary storage, free ports."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


class OrthancServer:
    """With dicomweb=True the DICOMweb plugin serves /dicom-web/; with users, HTTP basic auth is on."""

    def __init__(self, root: Path, stable_age: int = 1, dicomweb: bool = False, users: dict | None = None):
        self.root = root
        self.users = dict(users or {})
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.config = root / "orthanc.json"
        (root / "db").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            json.dumps(
                {
                    "Name": "MREFibrosisTest",
                    "StorageDirectory": str(root / "db"),
                    "IndexDirectory": str(root / "db"),
                    "HttpPort": self.http_port,
                    "DicomPort": self.dicom_port,
                    "DicomAet": "ORTHANC",
                    "RemoteAccessAllowed": False,
                    "AuthenticationEnabled": bool(self.users),
                    "RegisteredUsers": self.users,
                    "StableAge": stable_age,
                    "DicomCheckCalledAet": False,
                    "Plugins": [str(DICOMWEB_PLUGIN)] if dicomweb else [],
                    "DicomWeb": {"Enable": bool(dicomweb), "Root": "/dicom-web/"},
                    "HttpDescribeErrors": True,
                }
            )
        )
        self.proc = None
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb_url = self.url + "/dicom-web"

    def _open(self, path: str, timeout: float = 10):
        req = urllib.request.Request(self.url + path)
        if self.users:
            import base64

            user, password = next(iter(self.users.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        return urllib.request.urlopen(req, timeout=timeout)

    def start(self, timeout: float = 20.0) -> OrthancServer:
        self.proc = subprocess.Popen(["Orthanc", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self._open("/system", timeout=1).read()
                return self
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError("Orthanc exited at start") from None
                time.sleep(0.1)
        raise RuntimeError("Orthanc did not answer /system")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def store(self, folder: Path) -> None:
        """Push a folder with dcmtk's storescu, as a modality would."""
        subprocess.run(
            ["storescu", "-aet", "SCANNER", "-aec", "ORTHANC", "+sd", "+r", "127.0.0.1", str(self.dicom_port), str(folder)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def get(self, path: str):
        return json.loads(self._open(path).read())


def have_orthanc() -> bool:
    return shutil.which("Orthanc") is not None and shutil.which("storescu") is not None


def have_dicomweb_plugin() -> bool:
    return have_orthanc() and DICOMWEB_PLUGIN.is_file()


def first_job_then_outage(pacs, worker, study) -> None:
    """Store a study, let the worker take it as a job, stop the PACS: the job must wait for a
    retry (pending, one attempt), then the PACS comes back. Shared by both worker sources."""
    pacs.store(study)
    deadline = time.time() + 30
    while not worker.jobs.all() and time.time() < deadline:
        worker.poll()
        time.sleep(0.3)
    pacs.stop()
    assert worker.run_due()[0][1] == "retry"
    job = worker.jobs.all()[0]
    assert job.state == "pending" and job.attempts == 1
    pacs.start()


def until_idle(worker, timeout: float = 90.0) -> list:
    """Poll and run the worker's jobs until nothing is pending and nothing new arrived for 3 s;
    returns the (study, outcome) pairs of the jobs that ran."""
    deadline = time.time() + timeout
    quiet_since = None
    ran = []
    while time.time() < deadline:
        added = worker.poll()
        ran += worker.run_due()
        pending = [j for j in worker.jobs.all() if j.state == "pending"]
        if added or pending:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > 3.0:
            return ran
        time.sleep(0.3)
    raise AssertionError(f"worker did not finish: {worker.jobs.all()}")
