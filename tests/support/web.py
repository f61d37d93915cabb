"""What the web monitor's tests share: a free port, a real ``smc ui`` process waited on until
it answers (and its live stream followed), and Debian's Chromium launched by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Browser, Playwright

from tests.support.harness import Proc, Runner, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_ui(runner: Runner, port: int, *args: str, probe: str = "/api/state") -> Proc:
    """Start ``smc ui`` on ``port`` with the runner's environment and wait until ``probe``
    answers 200; a server that exits first fails the test with its output."""
    ui = runner.start("ui", "--port", str(port), *args)
    url = f"http://127.0.0.1:{port}{probe}"

    def serving() -> bool:
        if ui.popen.poll() is not None:
            pytest.fail(f"smc ui exited:\n{ui.output()}")
        try:
            return httpx2.get(url, timeout=2).status_code == 200
        except httpx2.TransportError:
            return False

    wait_until(serving, 20, lambda: f"smc ui did not serve:\n{ui.output()}")
    return ui


def serve_and_stream(
    runner: Runner, port: int, records: list[tuple[float, dict[str, Any]]]
) -> tuple[Proc, threading.Thread]:
    """Start ``smc ui`` with the runner's environment, wait until it serves, and follow its
    stream in a thread that appends (arrival time, record) to ``records``."""
    ui = start_ui(runner, port)
    base = f"http://127.0.0.1:{port}"
    connected = threading.Event()

    def read() -> None:
        # The stream ends when the test stops the server: the end is not an error.
        with (
            contextlib.suppress(httpx2.TransportError),
            httpx2.stream("GET", f"{base}/api/stream", timeout=60) as stream,
        ):
            connected.set()
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    arrived = time.time()
                    records.extend((arrived, record) for record in json.loads(line[6:]))

    reading = threading.Thread(target=read, daemon=True)
    reading.start()
    assert connected.wait(10)
    return ui, reading


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium (scripts/test.sh installs it; Playwright downloads no browser)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (scripts/test.sh installs it)"
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=chromium, args=args)


#: The words inside the elements a CSS selector picks that the page draws over more than one
#: line: words broken mid-way (each word's range has a box on each line it takes). For
#: ``page.evaluate(BROKEN_WORDS, selector)``.
BROKEN_WORDS = """(selector) => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const lines = new Set([...range.getClientRects()].map((box) => Math.round(box.top)));
        if (lines.size > 1) broken.push(word[0]);
      }
    }
  }
  return broken;
}"""
