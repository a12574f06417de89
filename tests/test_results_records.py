"""docs/results.md's reports whose run records are committed (docs/records/...) are what those records give."""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- report: (\S+) -->$", re.MULTILINE)


def make_results():
    spec = importlib.util.spec_from_file_location("make_results", ROOT / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed_reports():
    text = (ROOT / "docs" / "results.md").read_text()
    return [folder for folder in MARKER.findall(text) if (ROOT / folder / "results.json").is_file()]


def test_some_report_has_its_records_committed():
    assert committed_reports(), "no report of docs/results.md has its run records in the repository"


@pytest.mark.parametrize("folder", committed_reports())
def test_the_report_is_what_its_records_give(folder):
    text = (ROOT / "docs" / "results.md").read_text()
    start = text.index(f"<!-- report: {folder} -->")
    end = text.index("<!-- end report -->", start)
    written = text[start:end].split("\n", 1)[1].strip()
    assert written == make_results().report_of(folder).strip(), (
        f"docs/results.md's report of {folder} differs from its records: "
        f"run python docs/make_results.py --only {folder}")


@pytest.mark.parametrize("folder", committed_reports())
def test_the_section_prose_is_results_prose(folder):
    marker = f"<!-- report: {folder} -->"
    prose = (ROOT / "docs" / "results_prose.md").read_text()
    results = (ROOT / "docs" / "results.md").read_text()
    heading = prose.rindex("\n## ", 0, prose.index(marker)) + 1
    section = prose[heading:prose.index(marker)]
    assert section in results, f"run python docs/make_results.py --only {folder}"
