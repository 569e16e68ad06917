"""A small course and a class of hostile, broken and honest submissions for it.

The course has one assignment with two graded parts: ``gd_step`` (2 points, checked with
optimlab.check, visible and hidden) and ``sum_of_squares`` (3 points, plain asserts with
torch.allclose, which a submission can try to patch). Each student hands in one way of
breaking or cheating; ``EXPECTED`` says what they must get and what the grader must say.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat

from optimlab.grade.course import ROOT
from optimlab.grade.sandbox import unavailable as sandbox_unavailable

ASSIGNMENT = "hostile"
#: How the end-to-end tests grade: in the sandbox where bwrap works (CI installs it), else
#: without one, so that grading itself is still tested (tests/test_sandbox.py then skips).
SANDBOX = "bwrap" if sandbox_unavailable() is None else "none"
NOTEBOOK = "hostile.ipynb"

GD = "def gd_step(param, grad, state, *, lr=1e-3):\n    param.sub_(lr * grad)\n"
GD_WRONG = "def gd_step(param, grad, state, *, lr=1e-3):\n    param.add_(lr * grad)\n"
SOS = "def sum_of_squares(x):\n    return (x ** 2).sum()\n"
SOS_WRONG = "def sum_of_squares(x):\n    return x.abs().sum()\n"


def _meta(gid, *, solution=False, grade=False, points=None):
    meta = {"grade": grade, "grade_id": gid, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def master() -> nbformat.NotebookNode:
    cells = [
        nbformat.v4.new_code_cell("import torch\nimport optimlab"),
        nbformat.v4.new_code_cell(
            "def gd_step(param, grad, state, *, lr=1e-3):\n    ### BEGIN SOLUTION\n"
            "    param.sub_(lr * grad)\n    ### END SOLUTION", metadata=_meta("gd_step",
                                                                           solution=True)),
        nbformat.v4.new_code_cell(
            'optimlab.check(gd_step, "gd", "basic")\n### BEGIN HIDDEN TESTS\n'
            '_ = optimlab.check(gd_step, "gd", "basic", hidden=True)\n### END HIDDEN TESTS',
            metadata=_meta("check_gd", grade=True, points=2)),
        nbformat.v4.new_code_cell(
            "def sum_of_squares(x):\n    ### BEGIN SOLUTION\n    return (x ** 2).sum()\n"
            "    ### END SOLUTION", metadata=_meta("sum_of_squares", solution=True)),
        nbformat.v4.new_code_cell(
            "x = torch.tensor([1.0, -2.0, 3.0])\n"
            "assert torch.allclose(optimlab.call(sum_of_squares, x), torch.tensor(14.0))\n"
            "### BEGIN HIDDEN TESTS\n"
            "for _ in range(3):\n    x = torch.randn(5)\n"
            "    assert torch.allclose(optimlab.call(sum_of_squares, x), (x * x).sum())\n"
            "### END HIDDEN TESTS", metadata=_meta("check_sos", grade=True, points=3)),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                  "name": "python3"}}
    for i, c in enumerate(nb.cells):
        c["id"] = f"h-{i}"
    return nb


def make_course(root: Path) -> Path:
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(master(), root / "source" / ASSIGNMENT / NOTEBOOK)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


def submission(gd: str = GD, sos: str = SOS, edit=None) -> str:
    nb = master()
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "gd_step":
            cell.source = gd
        elif gid == "sum_of_squares":
            cell.source = sos
    if edit:
        edit(nb)
    return nbformat.writes(nb)


def _test_cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _blank_tests(nb):
    _test_cell(nb, "check_gd").source = "pass"
    _test_cell(nb, "check_sos").source = "pass"


def _delete_tests(nb):
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]


def _rename_grade_id(nb):
    _test_cell(nb, "check_gd").metadata.nbgrader["grade_id"] = "my_own_check"
    _test_cell(nb, "my_own_check").source = "pass"


# student -> (file name, notebook text, expected score, words the grader must say)
CLASS: dict[str, tuple[str, str, float, str]] = {
    "honest": (NOTEBOOK, submission(), 5, ""),
    "honest_alt": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    param -= lr * grad\n",
        "def sum_of_squares(x):\n    return torch.sum(x * x)\n"), 5, ""),
    "raises_at_import": (NOTEBOOK, submission('raise RuntimeError("import-time failure")\n'
                                              + GD), 3, "NameError"),
    "raises_in_step": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    raise ValueError('step failed')\n"),
        3, "your function raised ValueError"),
    "returns_nan": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n"
        "    param.sub_(lr * grad / (grad - grad))\n"),
        3, "NaN"),
    "wrong_shape": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n"
        "    param.data = (param - lr * grad).reshape(-1)\n"), 3, "has shape"),
    "changes_grad": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    grad.mul_(lr)\n    param.sub_(grad)\n"),
        3, "changed `grad` in place"),
    "returns_new_tensor": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    return param - lr * grad\n"),
        3, "in place"),
    "hangs_in_step": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    while True:\n        pass\n"),
        3, "the limit is"),
    "hangs_at_top_level": (NOTEBOOK, submission("while True:\n    pass\n" + GD), 3, "Timeout"),
    "sleeps": (NOTEBOOK, submission(
        "import time\ndef gd_step(param, grad, state, *, lr=1e-3):\n    time.sleep(600)\n"),
        3, "the limit is"),
    # the kernel carries on after SystemExit: both functions are defined and right
    "calls_sys_exit": (NOTEBOOK, submission(GD + "import sys\nsys.exit('bye')\n"), 5, ""),
    "calls_os_exit": (NOTEBOOK, submission("import os\nos._exit(1)\n" + GD), 0, ""),
    "kills_its_kernel": (NOTEBOOK, submission(
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + GD), 0, ""),
    "eats_memory": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n"
        "    hog = torch.ones(int(2e10), dtype=torch.uint8)\n    param.sub_(lr * grad)\n"),
        3, "RuntimeError"),
    # patching what the kernel's tests use changes nothing: the judge runs elsewhere, on data
    "patches_checker": (NOTEBOOK, submission(
        "import optimlab\noptimlab.check = lambda *a, **k: None\n" + GD_WRONG), 3,
        "points withdrawn"),
    "patches_allclose": (NOTEBOOK, submission(
        GD, "torch.allclose = lambda *a, **k: True\n" + SOS_WRONG), 2, "points withdrawn"),
    "patches_assertionerror": (NOTEBOOK, submission(
        "import builtins\nbuiltins.AssertionError = type('Fine', (Exception,), {})\n"
        + GD_WRONG), 3, ""),
    "wraps_torch_optim": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n"
        "    p = param.clone().requires_grad_()\n    p.grad = grad.clone()\n"
        "    torch.optim.SGD([p], lr=lr).step()\n    param.copy_(p.detach())\n"),
        3, "write the update yourself"),
    "special_cases_hidden": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n"
        "    if param.dtype == torch.float32:\n        param.add_(lr * grad)\n"
        "    else:\n        param.sub_(lr * grad)\n"), 3, "float32"),
    "edits_test_cells": (NOTEBOOK, submission(GD_WRONG, edit=_blank_tests), 3, ""),
    "deletes_test_cells": (NOTEBOOK, submission(GD_WRONG, edit=_delete_tests), 3, ""),
    "changes_grade_id": (NOTEBOOK, submission(GD_WRONG, edit=_rename_grade_id), 0,
                         "autograde failed"),
    "renames_notebook": ("my_homework.ipynb", submission(), 5, "renamed"),
    "empty_file": (NOTEBOOK, "", 0, "not a valid notebook"),
    "not_json": (NOTEBOOK, json.dumps({"cells": "nope"})[:-3], 0, "not a valid notebook"),
    # the sandbox's gradebook is a scratch copy, and no grade is read from it
    "writes_the_gradebook": (NOTEBOOK, submission(
        "open('../../../gradebook.db', 'wb').write(b'garbage')\n" + GD), 5, ""),
    "writes_next_to_gradebook": (NOTEBOOK, submission(
        "open('../../../evil.txt', 'w').write('x')\n" + GD), 5, "evil.txt"),
    # no source/ where student code runs: the cell fails, and with it gd_step
    "reads_course_source": (NOTEBOOK, submission(
        "_peek = open('../../../source/hostile/hostile.ipynb').read()\n" + GD), 3,
        "FileNotFoundError"),
    # the kernel imports the real torch and optimlab before any student code: the fakes are
    # never loaded, and sum_of_squares fails in the kernel as it does in the judge
    "ships_fake_modules": (NOTEBOOK, submission(sos=SOS_WRONG), 2, ""),
    # the gradebook beside a submission holds no other student: nothing to read or spoil
    "counts_other_students": (NOTEBOOK, submission(
        "import sqlite3\n_db = sqlite3.connect('../../../gradebook.db')\n"
        "_n = _db.execute('SELECT COUNT(*) FROM student').fetchone()[0]\n"
        "assert _n == 1, f'{_n} students'\n" + GD), 5, ""),
}

# Files handed in beside the notebook. The kernel runs in the submission's folder, which is on
# its sys.path: a `torch` package there would shadow the real one and patch it before any test
# runs, and an `optimlab` package would replace the checks.
FAKE_TORCH = """import os, sys
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
del sys.modules["torch"]
import torch as _real
_real.allclose = lambda *args, **kwargs: True
sys.modules["torch"] = _real
"""
FAKE_VERDICT = """import json, sys
token = sys.stdin.readline().strip()
print(f"OPTIMLAB-VERDICT:{token}:" + json.dumps({"check_sos": {"passed": True, "message": ""}}))
"""
EXTRA_FILES: dict[str, dict[str, str]] = {
    "ships_fake_modules": {"torch/__init__.py": FAKE_TORCH,
                           "optimlab/__init__.py": "", "optimlab/verdict.py": FAKE_VERDICT},
}


def write_class(folder: Path, students: list[str]) -> Path:
    for student in students:
        name, text, _, _ = CLASS[student]
        target = folder / student / ASSIGNMENT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        for rel, content in EXTRA_FILES.get(student, {}).items():
            (target.parent / rel).parent.mkdir(parents=True, exist_ok=True)
            (target.parent / rel).write_text(content, encoding="utf-8")
    return folder


# ----------------------------------------------------------------------------- isolation
# A second class, graded with the sandbox: honest work written the way students write it, and
# attacks on the judge, on other students and on the grader. Honest students come last.
def _add_cell_before(gid: str, source: str):
    def edit(nb):
        at = next(i for i, c in enumerate(nb.cells)
                  if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
        nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    return edit


def _append_cells(source: str, count: int):
    def edit(nb):
        nb.cells += [nbformat.v4.new_code_cell(source) for _ in range(count)]
    return edit


FIND_AND_EXEC = """import glob, json
_found = [p for pattern in ("../../../source/*/*.ipynb", "/tmp/**/{what}", "{root}/**/{what}")
          for p in glob.glob(pattern, recursive=True)]
for _path in _found:
    for _cell in json.load(open(_path))["cells"]:
        if "def gd_step" in "".join(_cell["source"]):
            exec("".join(_cell["source"]).replace("### BEGIN SOLUTION", ""))
"""
DAEMON = """import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        {body}
    os._exit(0)
"""
SIGINT_STALL = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    time.sleep(0.1)\n")
FUNCTION_MODE = """from torch.overrides import TorchFunctionMode
class _Yes(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.allclose:
            return True
        return func(*args, **(kwargs or {}))
_Yes().__enter__()
"""
WRITES_EVERYWHERE = """import os, site, optimlab
for _path in [os.path.expanduser("~/.jupyter/nbgrader_config.py"),
              os.path.expanduser("~/.ipython/profile_default/startup/99-hostile.py"),
              os.path.expanduser("~/.local/optimlab-hostile-was-here"),
              "/tmp/optimlab-hostile-was-here",
              *[os.path.join(p, "optimlab_hostile.pth") for p in site.getsitepackages()],
              os.path.join(os.path.dirname(os.path.dirname(optimlab.__file__)),
                           "sitecustomize.py")]:
    try:
        os.makedirs(os.path.dirname(_path), exist_ok=True)
        with open(_path, "w") as _f:
            _f.write("import os\\nos.environ['OPTIMLAB_HOSTILE'] = '1'\\n"
                     "c = get_config()\\nc.CourseDirectory.db_url = 'sqlite:////nonexistent'\\n")
    except OSError:
        pass
"""
HOST_TRACES = ["~/.jupyter/nbgrader_config.py", "~/.ipython/profile_default/startup/99-hostile.py",
               "~/.local/optimlab-hostile-was-here", "/tmp/optimlab-hostile-was-here"]
DAEMON_MARK = "1234.5"

ISOLATION: dict[str, tuple[str, str, float, str]] = {
    "helper_cell": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    param.sub_(_scaled(lr, grad))\n",
        edit=_add_cell_before("gd_step", "def _scaled(lr, g):\n    return lr * g\n")), 5, ""),
    "magic_cells": (NOTEBOOK, submission("%%time\n" + GD, "%precision 3\n" + SOS), 5, ""),
    "execs_master": (NOTEBOOK, submission(
        GD_WRONG + FIND_AND_EXEC.format(what="source/hostile/hostile.ipynb", root=ROOT)), 3, ""),
    "execs_other_student": (NOTEBOOK, submission(
        GD_WRONG + FIND_AND_EXEC.format(what="submitted/*/hostile/hostile.ipynb", root=ROOT)
        + "import glob\nfor _p in glob.glob('/proc/*/cwd/../../*/hostile/*.ipynb'):\n"
        "    exec(open(_p).read())\n"), 3, ""),
    "swaps_code_object": (NOTEBOOK, submission(
        "import optimlab\noptimlab.check.__code__ = (lambda *a, **k: None).__code__\n"
        + GD_WRONG), 3, "no record"),
    "noop_torch_optim": (NOTEBOOK, submission(
        "torch.optim.SGD.step = lambda self, closure=None: None\n"
        "def gd_step(param, grad, state, *, lr=1e-3):\n    pass\n"), 3, "points withdrawn"),
    "function_mode": (NOTEBOOK, submission(GD, FUNCTION_MODE + SOS_WRONG), 2,
                      "points withdrawn"),
    "writes_config_and_site": (NOTEBOOK, submission(WRITES_EVERYWHERE + GD), 5, ""),
    "leaves_daemon": (NOTEBOOK, submission(DAEMON.format(
        body=f"os.execvp('sleep', ['sleep', '{DAEMON_MARK}'])") + GD), 5, ""),
    "holds_pipes": (NOTEBOOK, submission(DAEMON.format(
        body="import time; time.sleep(600)") + GD), 5, ""),
    "kills_grader": (NOTEBOOK, submission(
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n"
        + GD), 0, "no test left a record"),
    "stops_grader": (NOTEBOOK, submission(
        "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n" + GD), 0, "ran past"),
    "sigint_stall": (NOTEBOOK, submission(edit=_append_cells(SIGINT_STALL, 8)), 5, "ran past"),
    "symlink_to_master": (NOTEBOOK, "", 0, "symlink"),
    "symlink_loop": (NOTEBOOK, submission(), 5, "symlink"),
    "zz_honest_1": (NOTEBOOK, submission(), 5, ""),
    "zz_honest_2": (NOTEBOOK, submission(
        "def gd_step(param, grad, state, *, lr=1e-3):\n    param -= lr * grad\n"), 5, ""),
}


def write_isolation_class(folder: Path, master_path: Path) -> Path:
    for student, (name, text, _, _) in ISOLATION.items():
        target = folder / student / ASSIGNMENT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if student == "symlink_to_master":
            target.symlink_to(master_path)
            continue
        target.write_text(text, encoding="utf-8")
        if student == "symlink_loop":
            (target.parent / "loop").symlink_to(".")
    return folder
