"""Submissions in: a class folder or an LMS zip into nbgrader's ``submitted/``.

Collecting never follows a symlink and never raises for one student's files: whatever is odd
(symlinks, names that are not printable UTF-8, special or unreadable files, files over the size
limits, a student's own ``timestamp.txt``) is skipped and reported, one line each, and the rest
of the class is collected. A single notebook handed in under another name is renamed to the
expected one; a submission that holds no readable notebook is reported before grading
(:func:`unreadable`).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import course

DEFAULT_ZIP_REGEX = r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"
MAX_FILE_BYTES = 50 * 1024**2
MAX_SUBMISSION_BYTES = 200 * 1024**2
MAX_REPORTS = 20
"""Lines reported per submission; the rest are counted."""
MAX_NAME = 128  # the gradebook keeps student ids and notebook names in String(128)


@dataclass
class Collector:
    """Copies submissions into ``submitted`` (``<student>/<assignment>/``), checking notebook
    names against the masters in ``source`` (``<assignment>/*.ipynb``)."""

    submitted: Path
    source: Path
    max_file_bytes: int = MAX_FILE_BYTES
    max_submission_bytes: int = MAX_SUBMISSION_BYTES
    max_reports: int = MAX_REPORTS

    def folder(self, folder: Path, assignments: Iterable[str], *,
               trust_timestamps: bool = False) -> list[str]:
        """Copy ``<student>/<assignment>/`` under ``folder``, regular files only; the problems.

        A student's ``timestamp.txt`` (nbgrader reads it for late penalties, and students can
        write it) is collected only with ``trust_timestamps``.
        """
        wanted = set(assignments)
        problems: list[str] = []
        try:
            students = _scan(folder)
        except OSError as exc:
            return [f"{folder}: cannot read the submissions folder ({_why(exc)})"]
        for student in students:
            name = student.name
            try:
                if student.is_symlink():
                    problems.append(f"{_shown(name)}: ignored symlinked student folder "
                                    "(symlinks are not collected)")
                    continue
                if not student.is_dir(follow_symlinks=False):
                    continue
                odd = _odd_name(name)
                if odd:
                    problems.append(f"{name!r}: student folder skipped: its name {odd}")
                    continue
                for a_dir in _scan(Path(student.path)):
                    problems += self._one(name, a_dir, wanted, trust_timestamps)
            except OSError as exc:
                problems.append(f"{_shown(name)}: not collected ({_why(exc)})")
        return problems

    def _one(self, student: str, a_dir: os.DirEntry[str], wanted: set[str],
             trust_timestamps: bool) -> list[str]:
        """One ``<student>/<assignment>`` entry, replacing what was collected before."""
        tag = f"{student}/{_shown(a_dir.name)}"
        if a_dir.is_symlink():
            return [f"{tag}: ignored symlinked assignment folder (symlinks are not collected)"]
        if not a_dir.is_dir(follow_symlinks=False):
            return []
        if a_dir.name not in wanted:
            return [f"{student}: unknown assignment {a_dir.name!r}, skipped"]
        target = self.submitted / student / a_dir.name
        try:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)  # even if nothing is copied: "no notebook" is reported
            notes = [f"{tag}: {note}" for note in
                     self._copy(Path(a_dir.path), target, trust_timestamps)]
        except OSError as exc:
            return [f"{tag}: not collected ({_why(exc)})"]
        if len(notes) > self.max_reports:
            notes[self.max_reports:] = [f"{tag}: ... and {len(notes) - self.max_reports} more "
                                        "things not collected"]
        return notes + self.fix_names(student, a_dir.name, target)

    def _copy(self, src: Path, dest: Path, trust_timestamps: bool) -> list[str]:
        """The regular files under ``src`` to the same paths under ``dest``, within the size
        limits (notebooks first, so that data files cannot crowd out what is graded)."""
        found, notes = regular_files(src)
        if not trust_timestamps and any(rel == "timestamp.txt" for rel, _ in found):
            found = [(rel, size) for rel, size in found if rel != "timestamp.txt"]
            notes.append("ignored timestamp.txt from the student's folder (pass "
                         "trust_timestamps to use it)")
        total = 0
        for rel, size in found:
            if size > self.max_file_bytes:
                notes.append(f"ignored {rel!r}: {_size(size)}, over the "
                             f"{_size(self.max_file_bytes)} limit for one file")
                continue
            if total + size > self.max_submission_bytes:
                notes.append(f"ignored {rel!r}: the submission would be over "
                             f"{_size(self.max_submission_bytes)} in all")
                continue
            try:
                _copy_one(src, dest, rel)
                total += size
            except OSError as exc:
                notes.append(f"ignored {rel!r}: cannot copy it ({_why(exc)})")
        return notes

    def fix_names(self, student: str, assignment: str, folder: Path) -> list[str]:
        """A single notebook handed in under another name is graded as the expected one."""
        expected = sorted(p.name for p in (self.source / assignment).glob("*.ipynb"))
        handed = sorted(p.name for p in folder.glob("*.ipynb")
                        if p.is_file() and not p.is_symlink())
        if len(expected) == 1 and len(handed) == 1 and handed != expected:
            try:
                (folder / handed[0]).rename(folder / expected[0])
            except OSError as exc:  # e.g. a folder already has the expected name
                return [f"{student}/{assignment}: could not rename {handed[0]!r} -> "
                        f"{expected[0]!r} for grading ({_why(exc)})"]
            return [f"{student}/{assignment}: notebook renamed {handed[0]!r} -> "
                    f"{expected[0]!r} for grading"]
        return []


def collect_zip(root: Path, archive: Path, assignment: str, regex: str | None = None,
                db_url: str | None = None) -> None:
    """An LMS download (one zip per assignment) into ``root/submitted`` through nbgrader's
    ``zip_collect`` (which takes each submission's time from the file name)."""
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"{archive} is not a zip file")
    dest = root / "downloaded" / assignment / "archive"
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy(archive, dest / archive.name)
    course.zip_collect(root, assignment, regex or DEFAULT_ZIP_REGEX, db_url)


def students(submitted: Path, assignment: str) -> list[str]:
    """The students with a collected ``assignment``."""
    if not submitted.exists():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())


def unreadable(folder: Path) -> str | None:
    """Why a collected submission cannot be graded at all (no notebook, or one that is not a
    notebook), or None."""
    import nbformat

    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        return "no notebook in the submission"
    for nb_path in notebooks:
        try:
            nbformat.read(nb_path, as_version=4)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return (f"{nb_path.name} is not a valid notebook "
                    f"({type(exc).__name__}: {first[:120]})")
    return None


# ------------------------------------------------------------------ regular files
def regular_files(src: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """The regular files under ``src`` as (path relative to ``src``, size), notebooks first,
    and a note on everything else (symlinks, odd names, special or unreadable entries).

    Walks with scandir and lstat only: nothing a symlink points to is read. A stack, not
    recursion: a deep tree cannot exhaust Python's stack."""
    notes: list[str] = []
    found: list[tuple[str, int]] = []
    todo = [""]
    while todo:
        rel_dir = todo.pop()
        try:
            entries = _scan(src / rel_dir)
        except OSError as exc:
            notes.append(f"ignored folder {rel_dir!r} ({_why(exc)})")
            continue
        for entry in entries:
            rel = os.path.join(rel_dir, entry.name)
            try:
                if entry.is_symlink():  # first: nothing else may look through it
                    notes.append(f"ignored symlink {rel!r} (symlinks are not collected)")
                elif odd := _odd_name(entry.name):
                    notes.append(f"ignored {rel!r}: its name {odd}")
                elif entry.is_dir(follow_symlinks=False):
                    todo.append(rel)
                elif not entry.is_file(follow_symlinks=False):
                    notes.append(f"ignored {rel!r}: not a regular file")
                else:
                    found.append((rel, entry.stat(follow_symlinks=False).st_size))
            except OSError as exc:
                notes.append(f"ignored {rel!r} ({_why(exc)})")
    found.sort(key=lambda f: (not f[0].endswith(".ipynb"), f[0]))
    return found, notes


def copy_regular_files(src: Path, dest: Path, max_bytes: int | None = None) -> None:
    """Copy the regular files under ``src`` (:func:`regular_files`: never a link) to the same
    paths under ``dest``; with ``max_bytes``, only as many as fit, notebooks first."""
    dest.mkdir(parents=True, exist_ok=True)
    budget = max_bytes
    for rel, size in regular_files(src)[0]:
        if budget is not None:
            if size > budget:
                continue
            budget -= size
        _copy_one(src, dest, rel)


def _copy_one(src: Path, dest: Path, rel: str) -> None:
    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / rel, dest / rel)


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def _odd_name(name: str) -> str | None:
    """Why a file or folder name is not collected, or None. Names reach nbgrader, the
    gradebook and one-line reports, so: UTF-8, printable, at most MAX_NAME characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 (surrogate-escaped by os)
        return "is not UTF-8"
    if not name.isprintable():
        return "has unprintable characters (a newline, a tab, ...)"
    if len(name) > MAX_NAME:
        return f"is over {MAX_NAME} characters"
    return None


def _shown(name: str) -> str:
    """A name as it can go into a one-line report (print() cannot encode lone surrogates)."""
    return name if _odd_name(name) is None else repr(name)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__  # without the path: it may not be printable


def _size(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n} bytes"
