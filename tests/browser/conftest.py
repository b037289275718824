"""Fixtures of the browser checks: Debian's Chromium through Playwright, the built book served on
127.0.0.1, and a JupyterLab server with a token.

The static-page tests need a built book: `make build` first (`make test` does), or point
BOOK_HTML at another build's html folder. They fail, with that advice, when it is missing
(building the book inside a test would hide a broken build behind a slow test). Screenshots go to
`screenshots/` beside the html folder: `_build/screenshots/` by default.
"""

import functools
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OfflinePage:
    """A fresh browser page whose requests may only go to 127.0.0.1.

    Attributes: `page`; `blocked`, the URLs of aborted requests; `errors`, uncaught JavaScript
    errors (`pageerror`); `responses`, the status of every response by URL.
    """

    def __init__(self, context):
        self.page = context.new_page()
        self.blocked, self.errors, self.responses = [], [], {}
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("response",
                     lambda response: self.responses.setdefault(response.url, response.status))

    def _route(self, route):
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def offline_page(browser):
    """An `OfflinePage` in its own browser context, closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        yield OfflinePage(context)
    finally:
        context.close()


@pytest.fixture(scope="module")
def offline_pages(browser):
    """A factory of `OfflinePage`s sharing one browser context (1280 x 900), for tests that
    load many pages; the context is closed after the module."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield lambda: OfflinePage(context)
    finally:
        context.close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install Debian's package with "
                    "`apt-get install chromium` to run the browser checks")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Without Playwright's --hide-scrollbars: scroll bars take their place, as a reader's
        # desktop browser shows them, so a test can see whether a block shows one.
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     ignore_default_args=["--hide-scrollbars"])
        try:
            yield chromium
        finally:
            chromium.close()


def html_folder():
    """The built book's html folder: $BOOK_HTML, or _build/html."""
    return Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()


@pytest.fixture(scope="session")
def book_html():
    html = html_folder()
    if not (html / "book" / "09_step_through.html").exists():
        pytest.fail(f"no built book in {html}: run `make build` first (make test does), or set "
                    "BOOK_HTML to the html folder of a build", pytrace=False)
    return html


@pytest.fixture(scope="session")
def screenshots():
    folder = html_folder().parent / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def static_server(book_html):
    """The built book over HTTP on 127.0.0.1 and a free port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _write_settings(folder):
    """JupyterLab user settings: no autosave (the repository's notebook is never written), every
    cell rendered (no windowing), no news or update checks."""
    settings = {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                        "checkForUpdates": False},
    }
    for plugin, values in settings.items():
        package, name = plugin.rsplit("/", 1)
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


#: The pre-save hook of `make lab` (book/_ext/lab_hooks.py): saving keeps a chapter's metadata.
PRE_SAVE_HOOK = "book._ext.lab_hooks.keep_metadata"


class LabServer(NamedTuple):
    url: str
    token: str
    root: Path  #: the copy of book/ it serves


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving a copy of book/; yields a `LabServer`.

    It serves a fresh copy of book/ (a test may save a notebook there), with the pre-save hook
    `make lab` uses. Its configuration, runtime files, workspaces, user settings and checkpoints
    all live in a temporary folder, so it writes nothing into the repository. Always stopped: the
    shutdown API, then terminate, then kill.
    """
    tmp = tmp_path_factory.mktemp("lab")
    for sub in ("config", "runtime", "workspaces", "settings", "checkpoints"):
        (tmp / sub).mkdir()
    _write_settings(tmp / "settings")
    book = tmp / "book"
    shutil.copytree(ROOT / "book", book,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    port, token = free_port(), secrets.token_hex(16)
    # The repository's root on the server's path, for the hook's dotted name (as `make lab`,
    # which runs from the root).
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PYTHONPATH=path)
    python = ROOT / ".venv" / "bin" / "python"
    command = [str(python if python.exists() else sys.executable), "-m", "jupyterlab",
               "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={book}",
               f"--ContentsManager.pre_save_hook={PRE_SAVE_HOOK}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
               f"--LabApp.user_settings_dir={tmp / 'settings'}",
               f"--FileCheckpoints.root_dir={tmp / 'checkpoints'}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    log = open(tmp / "lab.log", "w")  # closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=str(tmp))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n"
                            f"{(tmp / 'lab.log').read_text()[-3000:]}", pytrace=False)
            try:
                if _get(f"{url}/api/status?token={token}") == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("JupyterLab did not answer within 120 s:\n"
                            f"{(tmp / 'lab.log').read_text()[-3000:]}", pytrace=False)
            time.sleep(0.5)
        yield LabServer(url, token, book)
    finally:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
            process.wait(timeout=20)
        except Exception:  # any failure here: fall back to signals
            pass
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        log.close()
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
        shutil.rmtree(book, ignore_errors=True)
