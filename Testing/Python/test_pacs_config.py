"""PACS connection settings: secrets only from the environment or a file, TLS checks on by default."""

import json

import pytest

from mrefibrosis.pacs.http_session import AuthSettings, PacsConfigError, make_session
from mrefibrosis.pacs.worker import WorkerConfig, make_source


def test_basic_auth_from_environment_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PACS_PW", "from-env")
    session = make_session(AuthSettings.from_dict({"type": "basic", "username": "u", "password_env": "PACS_PW"}, "auth"))
    assert session.auth == ("u", "from-env") and session.verify is True
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    session = make_session(AuthSettings.from_dict({"type": "basic", "username": "u", "password_file": str(secret)}, "auth"))
    assert session.auth == ("u", "from-file")


def test_bearer_token_and_ca_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("PACS_TOKEN", "abc")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    session = make_session(AuthSettings.from_dict({"type": "bearer", "token_env": "PACS_TOKEN"}, "auth"), ca_bundle=str(ca))
    assert session.headers["Authorization"] == "Bearer abc" and session.verify == str(ca)


@pytest.mark.parametrize(
    "auth, message",
    [
        ({"type": "basic", "username": "u", "password": "inline"}, "not in the config"),
        ({"type": "bearer", "token": "inline"}, "not in the config"),
        ({"type": "basic", "username": "u", "password_env": "UNSET_MREFIBROSIS_VAR"}, "is not set"),
        ({"type": "basic", "password_env": "X"}, "username"),
        ({"type": "kerberos"}, "not none, basic or bearer"),
        ({"type": "basic", "username": "u"}, "password is missing"),
    ],
)
def test_bad_auth_settings_are_one_line_errors(auth, message, monkeypatch):
    monkeypatch.delenv("UNSET_MREFIBROSIS_VAR", raising=False)
    with pytest.raises(PacsConfigError, match=message) as err:
        make_session(AuthSettings.from_dict(auth, "auth"))
    assert "\n" not in str(err.value) and "inline" not in str(err.value)


def test_missing_ca_bundle_and_unknown_source(tmp_path):
    with pytest.raises(PacsConfigError, match="CA bundle"):
        make_session(AuthSettings(), ca_bundle=str(tmp_path / "none.pem"))
    with pytest.raises(PacsConfigError, match="unknown source"):
        make_source(WorkerConfig(source="ftp"))
    with pytest.raises(PacsConfigError, match="dicomweb_url"):
        make_source(WorkerConfig(source="dicomweb"))


def test_read_options_from_a_json_config():
    from mrefibrosis.reading.budget import BudgetLimits
    from mrefibrosis.reading.exam_loader import ReadOptions

    opts = ReadOptions(
        **{
            "budget": {"max_seconds_per_exam": 30},
            "plausible_median_kpa": [0.8, 15],
            "signatures": [{"source": "site", "tokens": ["MRE", "STIFF"], "role": "stiffness"}],
        }
    )
    assert opts.budget == BudgetLimits(max_seconds_per_exam=30) and opts.plausible_median_kpa == (0.8, 15)
    assert opts.signatures[0].tokens == frozenset({"MRE", "STIFF"})


@pytest.mark.parametrize("service", ["worker", "receiver"])
def test_roi_margins_in_a_service_config(tmp_path, service):
    """Sites set the automatic ROI's margins in the JSON config; a bad value stops the service at
    start with one line naming the key, not at the first exam."""
    from mrefibrosis.errors import MREFibrosisError
    from mrefibrosis.model.margin_settings import RoiMargins
    from mrefibrosis.pacs.receiver import ReceiverConfig
    from mrefibrosis.pacs.worker import WorkerConfig

    cls = WorkerConfig if service == "worker" else ReceiverConfig
    path = tmp_path / f"{service}.json"
    path.write_text(json.dumps({"roi_margins_mm": {"driver_mm": 30}}))
    assert cls.load(path).margins() == RoiMargins(liver_edge_mm=RoiMargins().liver_edge_mm, driver_mm=30.0)
    path.write_text("{}")
    assert cls.load(path).margins() == RoiMargins()
    for bad in ({"driver_mm": -5}, {"edge_mm": 10}, {"driver_mm": "25"}, {"driver_mm": True}, [10, 25]):
        path.write_text(json.dumps({"roi_margins_mm": bad}))
        with pytest.raises(MREFibrosisError, match="roi_margins_mm") as err:
            cls.load(path)
        assert "\n" not in str(err.value)
