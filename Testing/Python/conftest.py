import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# the Slicer module folder: its Qt-free logic package (MREFibrosisLib) is tested with slicer-core
sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "MREFibrosis"))

from fixtures import make_ge_exam, make_siemens_exam  # noqa: E402


@pytest.fixture(scope="session")
def ge_exam(tmp_path_factory):
    return make_ge_exam(tmp_path_factory.mktemp("ge"))


@pytest.fixture(scope="session")
def siemens_exam(tmp_path_factory):
    return make_siemens_exam(tmp_path_factory.mktemp("siemens"))
