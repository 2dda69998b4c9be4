"""The demo page in a real browser: Debian's chromium, headless, driven by Playwright.

Never a browser that Playwright downloads: ``executable_path`` points at the
system's chromium (``WSCODEC_CHROMIUM`` overrides the path). In CI (``CI``
set) a missing browser or Playwright fails the test; elsewhere it is skipped
with the reason.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import wscodec
from tests.helpers import system_program_missing
from wscodec.demo import AsyncioDemoServer, DemoServer, serve_demo

CHROMIUM = os.environ.get("WSCODEC_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless chromium with a fresh profile; one context shared by the pages."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        system_program_missing("Playwright is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        system_program_missing(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    # .ci/sanitize preloads ASan into this process and so into its children;
    # Playwright's driver and chromium are not ours and hang with it. Our code
    # (the demo server, in this process) stays instrumented.
    preload = os.environ.pop("LD_PRELOAD", None)
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport={"width": 1000, "height": 640},
            )
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context
            finally:
                context.close()
    finally:
        if preload is not None:
            os.environ["LD_PRELOAD"] = preload


class DemoThread:
    """The demo server in a thread, which the test can stop and start again on one port."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = 0
        self.server: Any = None
        self.thread: Any = None

    def start(self) -> DemoServer:
        self.server = serve_demo(
            "127.0.0.1", self.port, server=self.kind, close_timeout=2.0, stats_interval=0.2
        )
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.thread.join(10)
            assert not self.thread.is_alive()
            self.server = None


@pytest.fixture(params=["asyncio", "threaded"])
def demo(request: Any) -> Iterator[DemoThread]:
    """The demo on each of its servers (``wscodec demo --asyncio``, the default, and
    ``--threaded``)."""
    server = DemoThread(request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def join(context: Any, port: int, name: str) -> Any:
    """A new page that opened the demo and joined the chat as ``name``."""
    page = context.new_page()
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    page.errors = errors
    page.goto(f"http://127.0.0.1:{port}/")
    assert page.title() == "wscodec chat"
    page.fill("#nickname", name)
    page.click("#join-button")
    expect_state(page, "connected", f"Connected as {name}")
    return page


def expect_state(page: Any, state: str, text: str = "") -> None:
    page.wait_for_selector(f'#state[data-state="{state}"]')
    if text:
        assert text in page.text_content("#state")


def say(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def wait_for_message(page: Any, name: str, text: str) -> None:
    """Wait until the log shows ``text`` from ``name``, as text."""
    page.wait_for_function(
        """([name, text]) => [...document.querySelectorAll('#log li.message')].some(
            (li) => li.querySelector('.name').textContent === name
                 && li.querySelector('.text').textContent === text)""",
        arg=[name, text],
    )


def log_texts(page: Any) -> list:
    return page.eval_on_selector_all("#log li", "items => items.map(li => li.textContent)")


def test_chat_in_two_pages_then_server_restart(browser, demo):
    started = time.monotonic()
    alice = join(browser, demo.port, "alice")
    bob = join(browser, demo.port, "bob")

    # The join notice and the list of who is online.
    alice.wait_for_function(
        "() => [...document.querySelectorAll('#log li.notice')]"
        ".some((li) => li.textContent.includes('bob joined'))"
    )
    alice.wait_for_function("() => document.querySelector('#online-count').textContent === '2'")
    assert alice.eval_on_selector_all("#users li", "items => items.map(li => li.textContent)") == [
        "alice",
        "bob",
    ]

    # Each sees the other's message.
    say(alice, "Hello from alice")
    wait_for_message(bob, "alice", "Hello from alice")
    say(bob, "Hi alice, bob here")
    wait_for_message(alice, "bob", "Hi alice, bob here")

    # Chromium offers permessage-deflate by itself; the server accepted it, so
    # the messages above travelled compressed (RSV1) both ways.
    connections = demo.server.connections
    assert len(connections) == 2
    for connection in connections:
        assert connection.protocol.deflate is not None
        assert "permessage-deflate" in connection.response.headers["Sec-WebSocket-Extensions"]

    # Markup in a message is shown as text, never run or rendered.
    attack = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold</b>'
    say(bob, attack)
    wait_for_message(alice, "bob", attack)
    for page in (alice, bob):
        assert page.evaluate("() => window.pwned") is None
        assert page.query_selector("#log script, #log img, #log b") is None

    # The live panel comes from the server.
    alice.wait_for_function(
        "(backend) => document.querySelector('#stat-backend').textContent === backend",
        arg=wscodec.BACKEND,
    )
    alice.wait_for_function("() => Number(document.querySelector('#stat-total').textContent) >= 3")

    # A newcomer gets the history replayed.
    carol = join(browser, demo.port, "carol")
    wait_for_message(carol, "alice", "Hello from alice")
    wait_for_message(carol, "bob", attack)
    carol.close()
    alice.wait_for_function(
        "() => [...document.querySelectorAll('#log li.notice')]"
        ".some((li) => li.textContent.includes('carol left'))"
    )

    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "demo-chat.png"))

    # The server goes away: the page says so, and reconnects when it is back.
    demo.stop()
    for page in (alice, bob):
        expect_state(page, "disconnected", "reconnecting")
        assert page.is_disabled("#text")
    bob.screenshot(path=str(ARTIFACTS / "demo-disconnected.png"))
    demo.start()
    expect_state(alice, "connected", "Connected as alice")
    expect_state(bob, "connected", "Connected as bob")
    say(alice, "back again")
    wait_for_message(bob, "alice", "back again")

    for page in (alice, bob):
        assert page.errors == []
    assert time.monotonic() - started < 90


def test_a_reconnect_keeps_the_conversation_and_marks_the_gap(browser, demo):
    """Issue 21, item 12: a reconnect used to wipe the log. It keeps what was shown,
    adds a line that says messages may have been missed, then what the history has
    that the page had not shown, with no duplicates."""
    alice = join(browser, demo.port, "alice")
    (dropped,) = demo.server.connections  # alice's, the only one so far
    bob = join(browser, demo.port, "bob")
    say(alice, "before the gap")
    wait_for_message(bob, "alice", "before the gap")
    wait_for_message(alice, "alice", "before the gap")

    # Not a refusal: the page reconnects.
    if isinstance(demo.server, AsyncioDemoServer):
        demo.server.submit(dropped.close(1012, "service restart")).result(5)
    else:
        dropped.close(1012, "service restart")
    say(bob, "during the gap")
    expect_state(alice, "connected", "Connected as alice")
    alice.wait_for_function(
        "() => [...document.querySelectorAll('#log li.notice.gap')]"
        ".some((li) => li.textContent.includes('may have been missed'))"
    )
    wait_for_message(alice, "bob", "during the gap")
    texts = log_texts(alice)
    assert sum("before the gap" in text for text in texts) == 1, texts
    assert sum("during the gap" in text for text in texts) == 1, texts
    gap = next(n for n, text in enumerate(texts) if "may have been missed" in text)
    assert any("before the gap" in text for text in texts[:gap]), texts
    assert alice.errors == []
