"""A throw-away PostgreSQL server on loopback, for the gradebook tests.

It uses the server binaries of Debian's ``postgresql`` package (``.ci/run`` installs it) or any
``initdb`` on PATH. As root it runs the server as the ``postgres`` user, since PostgreSQL refuses
to run as root. ``OPTIMLAB_TEST_POSTGRES_URL`` points the tests at a server of your own instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Unavailable(Exception):
    """Why no server could be started (the tests skip with this reason)."""


def _bin_dir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    raise Unavailable("PostgreSQL is not installed: no initdb on PATH or under "
                      "/usr/lib/postgresql (apt-get install postgresql, as .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server() -> Iterator[str]:
    """Start a server in a scratch folder; yield the URL of an empty database; stop it."""
    url = os.environ.get("OPTIMLAB_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        import psycopg
    except ImportError as exc:
        raise Unavailable("psycopg is not installed (pip install -e '.[postgres]')") from exc
    bin_dir = _bin_dir()
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="optimlab-pg-"))
    if os.geteuid() == 0:  # the server will not run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(root)
            raise Unavailable("running as root and there is no 'postgres' user") from exc
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise Unavailable(f"{Path(cmd[0]).name} failed: {proc.stderr.strip()[-400:]} "
                              f"{log[-400:]}")

    started = False
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8")
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
            str(root / "server.log"), "-w", "-t", "60", "start")
        started = True
        con = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                              autocommit=True)
        with con.cursor() as cur:
            cur.execute("CREATE DATABASE optimlab_test")
        con.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/optimlab_test"
    finally:
        if started:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast",
                            "-w", "stop"], capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
