"""The package's version is the one CMakeLists.txt's project() call states, everywhere."""
import importlib.metadata
import pathlib
import re

import foxml_events as fe

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cmake_version() -> str:
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"project\(foxml_events\s+VERSION\s+([0-9]+\.[0-9]+\.[0-9]+)", text)
    assert match, "CMakeLists.txt states no project version"
    return match.group(1)


def test_module_and_distribution_carry_the_cmake_version():
    assert fe.__version__ == cmake_version()
    assert importlib.metadata.version("foxml-events") == cmake_version()


def test_pyproject_does_not_write_a_version_of_its_own():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^version\s*=", text, re.MULTILINE) is None
    assert 'dynamic = ["version"]' in text
