"""Collecting a class folder: regular files only, never through a symlink, within the size
limits, without a student's own timestamp.txt; every oddity reported, nothing raised."""

from __future__ import annotations

import os
from pathlib import Path

from optimlab.cli import build_parser
from optimlab.grade.pipeline import Pipeline

from .hostile import ASSIGNMENT, NOTEBOOK, make_course, submission

NB = submission()
LATE = "2030-01-01 00:00:00.000000 UTC"


def hand_in(root: Path, student: str, files: dict[str, str | bytes]) -> Path:
    folder = root / student / ASSIGNMENT
    folder.mkdir(parents=True)
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        data = content if isinstance(content, bytes) else content.encode()
        (folder / rel).write_bytes(data)
    return folder


def test_collect_folder_copies_regular_files_only(tmp_path):
    course = make_course(tmp_path / "course")
    master = course / "source" / ASSIGNMENT / NOTEBOOK
    root = tmp_path / "class"
    hand_in(root, "honest", {NOTEBOOK: NB, "data/w.txt": "1 2 3"})
    os.symlink(".", hand_in(root, "looper", {NOTEBOOK: NB}) / "loop")
    os.symlink(master, hand_in(root, "peeker", {}) / NOTEBOOK)
    (root / "linked_dir").mkdir()
    os.symlink(root / "honest" / ASSIGNMENT, root / "linked_dir" / ASSIGNMENT)
    os.symlink(root / "honest", root / "linked_student")
    hand_in(root, "hoarder", {NOTEBOOK: NB, "big.bin": b"x" * 10_001, "a.bin": b"a" * 9_000,
                              "b.bin": b"b" * 9_000})
    odd = hand_in(root, "odd", {NOTEBOOK: NB, "bad\nname.txt": "x", "L" * 200: "x"})
    with open(os.fsencode(odd) + b"/caf\xe9.txt", "wb") as f:  # a name that is not UTF-8
        f.write(b"x")
    os.mkfifo(odd / "pipe")  # reading it would block forever
    hand_in(root, "eve\nil", {NOTEBOOK: NB})
    hand_in(root, "late", {NOTEBOOK: NB, "timestamp.txt": LATE})

    pipe = Pipeline(course, tmp_path / "grading", progress=lambda m: None, sandbox="none")
    pipe.max_file_bytes, pipe.max_submission_bytes = 10_000, 20_000
    problems = pipe.collect_folder(root, [ASSIGNMENT])

    def said(student: str) -> str:
        return "\n".join(p for p in problems if p.startswith(student))

    got = tmp_path / "grading" / "submitted"
    assert not [p for p in got.rglob("*") if p.is_symlink()]
    assert (got / "honest" / ASSIGNMENT / NOTEBOOK).read_text() == NB
    assert (got / "honest" / ASSIGNMENT / "data" / "w.txt").read_text() == "1 2 3"
    assert said("honest") == ""
    assert "ignored symlink 'loop' (symlinks are not collected)" in said("looper/")
    assert (got / "looper" / ASSIGNMENT / NOTEBOOK).read_text() == NB
    assert f"ignored symlink {NOTEBOOK!r}" in said("peeker/")
    assert list((got / "peeker" / ASSIGNMENT).iterdir()) == []  # graded as "no notebook"
    assert "symlinked assignment folder" in said("linked_dir/")
    assert "symlinked student folder" in said("linked_student:")
    assert not (got / "linked_dir").exists() and not (got / "linked_student").exists()
    hoarder = said("hoarder/")
    assert "'big.bin': 10001 bytes, over the 10000 bytes limit" in hoarder
    assert "'b.bin': the submission would be over 20000 bytes in all" in hoarder
    assert sorted(p.name for p in (got / "hoarder" / ASSIGNMENT).iterdir()) == [
        "a.bin", NOTEBOOK]
    odd_said = said("odd/")
    for bad in ("'bad\\nname.txt'", "'caf\\udce9.txt'", "'" + "L" * 200 + "'", "'pipe'"):
        assert bad in odd_said, bad
    assert [p.name for p in (got / "odd" / ASSIGNMENT).iterdir()] == [NOTEBOOK]
    assert "'eve\\nil': student folder skipped" in said("'eve")
    assert "late/hostile: ignored timestamp.txt from the student's folder" in said("late/")
    assert not (got / "late" / ASSIGNMENT / "timestamp.txt").exists()
    assert all("\n" not in p and p.isprintable() for p in problems), problems

    # collected again: the same, and the timestamp when the grader trusts it
    assert pipe.collect_folder(root, [ASSIGNMENT]) == problems
    again = pipe.collect_folder(root, [ASSIGNMENT], trust_timestamps=True)
    assert not [p for p in again if p.startswith("late/")]
    assert (got / "late" / ASSIGNMENT / "timestamp.txt").read_text() == LATE


def test_collect_folder_reports_what_it_cannot_read(tmp_path):
    course = make_course(tmp_path / "course")
    root = tmp_path / "class"
    secret = hand_in(root, "secret", {NOTEBOOK: NB, "locked.txt": "x"}) / "locked.txt"
    secret.chmod(0)
    hand_in(root, "honest", {NOTEBOOK: NB})
    pipe = Pipeline(course, tmp_path / "grading", progress=lambda m: None, sandbox="none")
    problems = pipe.collect_folder(root, [ASSIGNMENT])
    if os.geteuid() != 0:  # root reads anything
        assert problems == ["secret/hostile: ignored 'locked.txt': cannot copy it "
                            "(Permission denied)"]
    assert (tmp_path / "grading" / "submitted" / "honest" / ASSIGNMENT / NOTEBOOK).exists()
    assert pipe.collect_folder(tmp_path / "nowhere", [ASSIGNMENT])[0].endswith(
        "cannot read the submissions folder (No such file or directory)")


def test_grade_has_a_trust_timestamps_flag():
    assert build_parser().parse_args(["grade", "x", "--trust-timestamps"]).trust_timestamps
    assert not build_parser().parse_args(["grade", "x"]).trust_timestamps
