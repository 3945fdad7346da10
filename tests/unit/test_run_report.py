"""tests/run.py's failure summary: what CI shows of a failed stage must name the failed tests and,
when a playbook run failed them, the failed tasks themselves (once, however many tests they fail)."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("aiquiz_run", ROOT / "tests" / "run.py")
run = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(run)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="test_golive" name="test_golive_completes"><failure message="AssertionError: failed results: [+58 more lines]">failed results:
go-live | Deploy the release | app1: health gate timed out after 120 s
go-live | Ship logs | mon1: receiver refused the client certificate
--- end of output:
PLAY RECAP</failure></testcase>
<testcase classname="test_awx" name="test_runner"><error message="failed on setup">failed results:
go-live | Deploy the release | app1: health gate timed out after 120 s
--- end of output:
x</error></testcase>
<testcase classname="test_ok" name="test_passes"/>
<testcase classname="test_plain" name="test_plain_assert"><failure message="assert 1 == 2">assert 1 == 2</failure></testcase>
</testsuite></testsuites>
"""


def test_every_failed_test_is_named_with_its_message(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    lines = run.junit_failures(str(path), width=40)
    assert [line.split(":")[0].strip() for line in lines] == [
        "FAILURE test_golive_completes", "ERROR test_runner", "FAILURE test_plain_assert"]
    assert all(len(line.split(": ", 1)[1]) <= 40 for line in lines)


def test_the_failed_tasks_behind_the_failures_are_listed_once_each(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    assert run.junit_causes(str(path)) == [
        "  CAUSE go-live | Deploy the release | app1: health gate timed out after 120 s",
        "  CAUSE go-live | Ship logs | mon1: receiver refused the client certificate"]
    assert run.junit_causes(str(path), limit=1, width=20) == ["  CAUSE go-live | Deploy the"]


def test_a_missing_or_broken_report_gives_no_lines(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites>", encoding="utf-8")
    assert run.junit_causes(str(tmp_path / "absent.xml")) == []
    assert run.junit_causes(str(broken)) == []
    assert run.junit_failures(str(broken)) == []
