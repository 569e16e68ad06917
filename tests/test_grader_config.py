"""The grader's own nbgrader runs, in a child process or in this one, load the course's
nbgrader_config.py and nothing a student's code could have written: not ~/.jupyter, not
$JUPYTER_CONFIG_PATH."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing

from optimlab.grade.course import ROOT, generate_assignment, nbgrader, scratch_course

# loaded, this would leave a marker and point the gradebook somewhere that cannot exist
HOSTILE = """from pathlib import Path
Path({marker!r}).write_text("loaded")
c = get_config()  # noqa: F821
c.CourseDirectory.db_url = "sqlite:////nonexistent/x.db"
"""


def _hostile_user_config(tmp_path, monkeypatch) -> list:
    """Config files a student's code could have written, in ~/.jupyter and on
    $JUPYTER_CONFIG_PATH; the markers they leave when loaded."""
    home, extra = tmp_path / "home", tmp_path / "extra"
    markers = []
    for where in (home / ".jupyter", extra):
        where.mkdir(parents=True)
        for name in ("nbgrader_config.py", "jupyter_config.py"):
            markers.append(tmp_path / f"{where.name}-{name}.loaded")
            (where / name).write_text(HOSTILE.format(marker=str(markers[-1])))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("JUPYTER_CONFIG_DIR", raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(extra))
    return markers


def _course_config_with_marker(course, seen) -> None:
    config = (ROOT / "course" / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(
        config + f"\nfrom pathlib import Path\nPath({str(seen)!r}).write_text('loaded')\n")


def test_nbgrader_reads_only_the_course_config(tmp_path, monkeypatch):
    course = tmp_path / "course"
    markers = _hostile_user_config(tmp_path, monkeypatch)
    scratch = tmp_path / "tmp"  # where nbgrader() makes its private HOME
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    course.mkdir()
    seen = tmp_path / "course-config.loaded"
    _course_config_with_marker(course, seen)

    nbgrader(["db", "student", "add", "ada"], cwd=course)  # one call: nbgrader starts slowly

    assert seen.exists(), "the course's own config was not loaded"
    assert [str(p) for p in markers if p.exists()] == []
    with closing(sqlite3.connect(course / "gradebook.db")) as con:  # the course's own
        assert con.execute("SELECT id FROM student").fetchall() == [("ada",)]
    assert list(scratch.iterdir()) == [], "the private HOME was left behind"


def test_in_process_generate_assignment_reads_only_the_course_config(tmp_path, monkeypatch):
    markers = _hostile_user_config(tmp_path, monkeypatch)
    course = scratch_course(ROOT / "course", tmp_path / "course")
    seen = tmp_path / "course-config.loaded"
    _course_config_with_marker(course, seen)

    generate_assignment(course, "01_gradient_descent")

    assert seen.exists(), "the course's own config was not loaded"
    assert [str(p) for p in markers if p.exists()] == []
    assert list((course / "release" / "01_gradient_descent").glob("*.ipynb"))
    with closing(sqlite3.connect(course / "gradebook.db")) as con:  # the course's own
        assert con.execute("SELECT name FROM assignment").fetchall() == [
            ("01_gradient_descent",)]
