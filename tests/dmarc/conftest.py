"""Fixtures for DMARC reporting: the shared report corpus, a real Dovecot IMAP server and a real DNS server.

``corpus`` is ../shared/corpora/dmarc (by path, never copied). ``dovecot`` starts Debian's Dovecot in the
foreground on 127.0.0.1 at a free port with a config written into tmp_path: one passwd-file user, plaintext
login allowed (loopback only), maildirs in tmp_path. ``posture_dns`` starts Knot (tests/auth/dnsserver.py)
serving the zones of ``posturezones.py``; nothing here asks the machine's resolver. ``start_gateway`` and
``downstream`` are the gateway's own fixtures (``tests/gateway/conftest.py``) and ``api`` the API's
(``tests/api/apiharness.py``), imported. When dovecot or
knotd is missing the tests fail under CI=true (scripts/test installs both) and are skipped otherwise.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "auth"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

from apiharness import api  # noqa: F401  (the API on a real database, for the DMARC endpoints)
from dnsserver import KnotServer, free_port, knotd_path
from gateway.conftest import downstream, downstream_port, gw_dns, gw_resolver, start_gateway  # noqa: F401
from imapserver import Imap, answers, dovecot_path
from posturezones import posture_zones

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "dmarc"


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI (scripts/test installs it)")
    pytest.skip(f"{what} not installed")


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared DMARC corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture(autouse=True)
def _no_resolver_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILWARDEN_RESOLVER", raising=False)
    monkeypatch.delenv("MAILWARDEN_DATABASE_URL", raising=False)


# --- Dovecot ---------------------------------------------------------------------------------------------

def _mail_owner() -> tuple[int, int]:
    """Dovecot refuses to run mail processes as root: as root, mail belongs to the package's 'dovecot' user."""
    if os.getuid() == 0:
        entry = pwd.getpwnam("dovecot")
        return entry.pw_uid, entry.pw_gid
    return os.getuid(), os.getgid()


def _dovecot_config(run: Path, port: int) -> str:
    user = getpass.getuser()
    if os.getuid() == 0:  # Dovecot runs its login and internal processes as the package's own users
        login, internal, group = "dovenull", "dovecot", "dovecot"
    else:
        login = internal = user
        group = grp.getgrgid(os.getgid()).gr_name
    uid, gid = _mail_owner()
    return f"""base_dir = {run}
state_dir = {run}/state
log_path = {run}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
default_internal_group = {group}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{run}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {run}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={run}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Imap]:
    """A Dovecot IMAP server on 127.0.0.1 with one user, ``reports`` / ``secret-pw``."""
    binary = dovecot_path()
    if binary is None:
        _missing("dovecot (apt-get install dovecot-imapd)")
    assert binary is not None
    # Dovecot's processes run as other users when root runs the tests: its whole tree lives in a directory
    # they can reach, outside pytest's private tmp tree (removed afterwards)
    run = Path(tempfile.mkdtemp(prefix="mw-dovecot-"))
    run.chmod(0o755)
    uid, gid = _mail_owner()
    for sub in ("state", "mail", "home"):
        (run / sub).mkdir()
        if sub != "state":
            os.chown(run / sub, uid, gid)
    (run / "passwd").write_text("reports:{PLAIN}secret-pw\n", encoding="utf-8")  # read by the auth process
    (run / "passwd").chmod(0o644)
    process: subprocess.Popen[bytes] | None = None
    for _ in range(5):
        port = free_port()
        config = tmp_path / "dovecot.conf"  # base_dir gets a dovecot.conf symlink of its own
        config.write_text(_dovecot_config(run, port), encoding="utf-8")
        process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = Imap("127.0.0.1", port, "reports", "secret-pw")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if answers(server):
                break
            time.sleep(0.1)
        else:
            process.terminate()
            process.wait(timeout=10)
            continue
        try:
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            shutil.rmtree(run, ignore_errors=True)
        return
    log = (run / "dovecot.log").read_text(errors="replace")[-2000:] if (run / "dovecot.log").exists() else ""
    shutil.rmtree(run, ignore_errors=True)
    raise RuntimeError("dovecot did not start: " + log)


# --- Knot DNS for the posture check ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def posture_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if knotd_path() is None:
        _missing("knotd (apt-get install knot)")
    directory = tmp_path_factory.mktemp("knot-posture")
    with KnotServer(directory, posture_zones()) as server:
        yield server.address
