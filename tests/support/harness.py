"""Shared helpers for the runtime tests (no tests here): compile a machine, run ``smc run``
processes from a temporary working directory, wait with clear failure messages.

Every process started through :class:`Runner` is stopped (SIGTERM, then SIGKILL) when the
test ends, including child machines that were registered in the test's database.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from smc.runtime.engine import Engine
from smc.runtime.loading import import_file, machine_class_in
from smc.runtime.store import Store, open_store
from tests.support.corpus import CORPUS

REPO = Path(__file__).resolve().parents[2]
PEER = CORPUS / "statemachine-engine"
USER_ACTIONS = REPO / "tests" / "user_actions"


def wait_until(
    predicate: Callable[[], Any], timeout: float, message: str | Callable[[], str]
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout:g}s: {text}")
        time.sleep(0.02)


def compile_machine(yaml_text: str, directory: Path, name: str = "machine") -> type[Any]:
    """Compile machine-file text with the real compiler and import the generated class."""
    from smc.compiler.check import check_paths
    from smc.compiler.codegen import generate_machine

    source = directory / f"{name}.yaml"
    source.write_text(yaml_text, encoding="utf-8")
    result = check_paths([str(source)])
    assert not result.errors, [str(d) for d in result.errors]
    module_path = directory / f"{name}_generated.py"
    module_path.write_text(generate_machine(result.machines[0], str(source)), encoding="utf-8")
    return machine_class_in(import_file(module_path), None, str(module_path))


def run_engine(
    machine_cls: type[Any], database: Path, timeout: float = 20.0, **options: Any
) -> Engine:
    """Run ``machine_cls`` in this process until it reaches a final state; returns the engine
    (for its context). Fails the test when it does not finish within ``timeout``."""
    options.setdefault("monitor", False)
    engine = Engine(machine_cls, database=str(database), **options)

    async def main() -> int:
        return await asyncio.wait_for(engine.run(), timeout)

    try:
        code = asyncio.run(main())
    except TimeoutError:
        pytest.fail(f"machine {engine.machine_name} did not reach a final state in {timeout}s")
    assert code == 0
    return engine


class Proc:
    """One ``python -m smc ...`` process with its output in a file."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str],
        log: Path,
        prefix: Sequence[str] = (),
    ) -> None:
        self.args = args
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [*prefix, sys.executable, "-m", "smc", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def describe(self) -> str:
        text = "smc " + " ".join(self.args)
        return text if len(text) < 200 else text[:200] + "..."

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.describe()} did not exit in {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()


class Runner:
    """Starts ``smc`` processes in ``cwd`` against ``cwd/smc.db``."""

    def __init__(self, cwd: Path, cache: Path) -> None:
        self.cwd = cwd
        self.db = cwd / "smc.db"
        self.env = dict(os.environ, SMC_CACHE_DIR=str(cache), SMC_DB=str(self.db))
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.procs: list[Proc] = []
        self._count = 0

    def start(self, *args: str, prefix: Sequence[str] = ()) -> Proc:
        """``smc ARGS`` in the background; ``prefix``: the command that runs it (``ip netns
        exec NS``)."""
        self._count += 1
        name = Path(args[1]).stem if len(args) > 1 else "smc"
        log = self.cwd / f"proc-{self._count}-{name}.log"
        proc = Proc(list(args), self.cwd, self.env, log, prefix)
        self.procs.append(proc)
        return proc

    def run(
        self, *args: str, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "smc", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"smc {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def store(self) -> Store:
        return open_store(str(self.db))

    def wait_running(self, proc: Proc, machine: str, timeout: float = 20.0) -> None:
        """Wait until ``machine`` is registered as running by ``proc``."""

        def running() -> bool:
            if proc.popen.poll() is not None:
                pytest.fail(f"{proc.describe()} exited early:\n{proc.output()}")
            if not self.db.exists():
                return False
            with self.store() as store:
                row = store.get_machine(machine)
            return row is not None and row.status == "running" and row.pid == proc.pid

        wait_until(running, timeout, lambda: f"{machine} never started:\n{proc.output()}")

    def wait_running_any(self, machine: str, timeout: float, parent: Proc) -> None:
        """Wait until ``machine`` (started by someone else) is registered as running."""

        def running() -> bool:
            with self.store() as store:
                row = store.get_machine(machine)
            return row is not None and row.status == "running"

        wait_until(running, timeout, lambda: f"{machine} never started:\n{parent.output()}")

    def job_statuses(self) -> dict[str, str]:
        with self.store() as store:
            return {job.id: job.status for job in store.list_jobs(limit=100000)}

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        # Child machines started by start_fsm are not our direct children: stop them by the pid
        # the registry recorded for them.
        if self.db.exists():
            with contextlib.suppress(Exception), self.store() as store:
                for row in store.list_machines():
                    if row.pid and row.status == "running" and row.pid != os.getpid():
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(row.pid, signal.SIGKILL)


#: One compile cache for the whole test session (compiling a machine file takes ~0.2 s).
_CACHE = Path(tempfile.mkdtemp(prefix="smc-test-cache-"))
atexit.register(shutil.rmtree, _CACHE, True)


@contextlib.contextmanager
def runner_in(tmp_path: Path) -> Iterator[Runner]:
    """A :class:`Runner` working in ``tmp_path/work``; stops everything it started on exit.
    Tests get one as the ``runner`` fixture (conftest.py)."""
    work = tmp_path / "work"
    work.mkdir()
    started = Runner(work, _CACHE)
    try:
        yield started
    finally:
        started.close()
