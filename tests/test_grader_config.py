"""The grader's own nbgrader runs load the course's nbgrader_config.py and nothing a student's
code could have written: not ~/.jupyter, not $JUPYTER_CONFIG_PATH."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing

from optimlab.grade.course import ROOT, nbgrader

# loaded, this would leave a marker and point the gradebook somewhere that cannot exist
HOSTILE = """from pathlib import Path
Path({marker!r}).write_text("loaded")
c = get_config()  # noqa: F821
c.CourseDirectory.db_url = "sqlite:////nonexistent/x.db"
"""


def test_nbgrader_reads_only_the_course_config(tmp_path, monkeypatch):
    home, extra, course = tmp_path / "home", tmp_path / "extra", tmp_path / "course"
    markers = {}
    for where in (home / ".jupyter", extra):
        where.mkdir(parents=True)
        for name in ("nbgrader_config.py", "jupyter_config.py"):
            markers[where / name] = tmp_path / f"{where.name}-{name}.loaded"
            (where / name).write_text(HOSTILE.format(marker=str(markers[where / name])))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("JUPYTER_CONFIG_DIR", raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(extra))
    scratch = tmp_path / "tmp"  # where nbgrader() makes its private HOME
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    course.mkdir()
    seen = tmp_path / "course-config.loaded"
    config = (ROOT / "course" / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(
        config + f"\nfrom pathlib import Path\nPath({str(seen)!r}).write_text('loaded')\n")

    nbgrader(["db", "student", "add", "ada"], cwd=course)  # one call: nbgrader starts slowly

    assert seen.exists(), "the course's own config was not loaded"
    assert [str(p) for p in markers.values() if p.exists()] == []
    with closing(sqlite3.connect(course / "gradebook.db")) as con:  # the course's own
        assert con.execute("SELECT id FROM student").fetchall() == [("ada",)]
    assert list(scratch.iterdir()) == [], "the private HOME was left behind"
