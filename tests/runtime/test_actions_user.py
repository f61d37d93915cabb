"""User actions: an ``--actions-dir`` directory, the ``smc.actions`` entry-point group, a user
action overriding a built-in, and unknown types failing at start-up before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import pytest

from smc.runtime.actions import ActionLoadError, ActionRegistry
from tests.support.harness import Runner

ACTION = """
from pathlib import Path
from smc.runtime.actions import BaseAction

class {cls}(BaseAction):
    async def execute(self, context):
        Path(self.params["path"]).write_text("{label}:" + str(self.params.get("text")))
        return self.params.get("success", "success")
"""

MACHINE = """
initial_state: start
metadata: {{machine_name: user_demo}}
transitions:
  - {{from: start, to: done, event: written}}
actions:
  start:
    - {{type: {type}, path: out.txt, text: "{{greeting}}", success: written}}
  done:
    - {{type: log, message: bye}}
"""


def test_actions_dir_file_names_and_class_names(runner: Runner, tmp_path: Path) -> None:
    actions = tmp_path / "actions"
    actions.mkdir()
    # `<type>_action.py` with `<Type>Action`
    (actions / "stamp_file_action.py").write_text(ACTION.format(cls="StampFileAction", label="a"))
    (runner.cwd / "m.yaml").write_text(MACHINE.format(type="stamp_file"))
    proc = runner.start(
        "run", "m.yaml", "--actions-dir", str(actions), "--initial-context", '{"greeting": "hi"}'
    )
    assert proc.wait(20) == 0, proc.output()
    assert (runner.cwd / "out.txt").read_text() == "a:hi"


def test_default_actions_dir_and_the_only_class_rule(runner: Runner) -> None:
    actions = runner.cwd / "actions"  # ./actions is used when no --actions-dir is given
    actions.mkdir()
    (actions / "stamp.py").write_text(ACTION.format(cls="Whatever", label="b"))
    (runner.cwd / "m.yaml").write_text(MACHINE.format(type="stamp"))
    proc = runner.start("run", "m.yaml", "--initial-context", '{"greeting": "yo"}')
    assert proc.wait(20) == 0, proc.output()
    assert (runner.cwd / "out.txt").read_text() == "b:yo"


def test_initial_context_from_a_file(runner: Runner) -> None:
    actions = runner.cwd / "actions"
    actions.mkdir()
    (actions / "stamp.py").write_text(ACTION.format(cls="Whatever", label="f"))
    (runner.cwd / "m.yaml").write_text(MACHINE.format(type="stamp"))
    (runner.cwd / "context.json").write_text('{"greeting": "from a file"}')
    proc = runner.start("run", "m.yaml", "--initial-context", "@context.json")
    assert proc.wait(20) == 0, proc.output()
    assert (runner.cwd / "out.txt").read_text() == "f:from a file"


def test_user_action_overrides_a_builtin(runner: Runner, tmp_path: Path) -> None:
    actions = tmp_path / "actions"
    actions.mkdir()
    (actions / "log.py").write_text(ACTION.format(cls="LogAction", label="mine"))
    (runner.cwd / "m.yaml").write_text(MACHINE.format(type="log"))
    proc = runner.start("run", "m.yaml", "--actions-dir", str(actions))
    assert proc.wait(20) == 0, proc.output()
    assert (runner.cwd / "out.txt").read_text() == "mine:{greeting}"


def test_entry_point_group(runner: Runner, tmp_path: Path) -> None:
    # A real installed distribution: a package plus its .dist-info with entry_points.txt.
    site = tmp_path / "site"
    package = site / "stampers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(ACTION.format(cls="Stamper", label="ep"))
    info = site / "stampers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stampers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[smc.actions]\nstamp_ep = stampers:Stamper\n")
    runner.env["PYTHONPATH"] = f"{site}:{runner.env['PYTHONPATH']}"
    (runner.cwd / "m.yaml").write_text(MACHINE.format(type="stamp_ep"))
    proc = runner.start("run", "m.yaml", "--initial-context", '{"greeting": "entry"}')
    assert proc.wait(20) == 0, proc.output()
    assert (runner.cwd / "out.txt").read_text() == "ep:entry"
    # and in-process, through the registry itself
    sys.path.insert(0, str(site))
    try:
        registry = ActionRegistry()
        found = registry.find("stamp_ep")
        assert found is not None and found.__name__ == "Stamper"
    finally:
        sys.path.remove(str(site))


def test_unknown_action_type_fails_at_startup_with_its_position(runner: Runner) -> None:
    (runner.cwd / "m.yaml").write_text(
        "initial_state: start\n"
        "metadata: {machine_name: broken}\n"
        "transitions:\n"
        "  - {from: start, to: done, event: go}\n"
        "actions:\n"
        "  start:\n"
        "    - {type: bash, command: touch ran.txt, success: go}\n"
        "  done:\n"
        "    - type: no_such_action\n"
    )
    result = runner.run("run", "m.yaml", check=False)
    assert result.returncode == 2, result.stderr
    # The checker `smc run` starts with knows every place the worker looks: an error there.
    assert (
        "m.yaml:9:13: error[SMC030]: unknown action type 'no_such_action' in state 'done'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (runner.cwd / "ran.txt").exists(), "an action ran before the start-up check"
    assert not runner.db.exists(), "the database was touched before the start-up check"


def test_removed_check_events_is_explained() -> None:
    class Machine:
        STATE_ACTIONS: ClassVar = {"monitoring": ({"type": "check_events"},)}
        ACTION_SOURCES: ClassVar = {"monitoring": ("c.yaml:3:5",)}

    with pytest.raises(ActionLoadError) as caught:
        ActionRegistry(entry_points=False).prepare(Machine)
    message = str(caught.value)
    assert message.startswith(
        "c.yaml:3:5: unknown action type 'check_events' in state 'monitoring'"
    )
    assert "removed from statemachine-engine" in message


def test_action_file_without_a_usable_class_is_a_startup_error(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(
        "class A:\n    async def execute(self, c): return None\n"
        "class B:\n    async def execute(self, c): return None\n"
    )

    class Machine:
        STATE_ACTIONS: ClassVar = {"s": ({"type": "two"},)}
        ACTION_SOURCES: ClassVar = {"s": ("m.yaml:1:1",)}

    with pytest.raises(ActionLoadError, match=r"m\.yaml:1:1: .*expected a class TwoAction"):
        ActionRegistry([tmp_path], entry_points=False).prepare(Machine)


EXITING = """
import sys
from smc.runtime.actions import BaseAction

class QuitAction(BaseAction):
    async def execute(self, context):
        sys.exit(3)
"""


def test_a_user_action_calling_sys_exit_fails_the_action_not_the_worker(runner: Runner) -> None:
    """The worker exited 3 with no error line and gave the job back uncounted: every restart
    ended on the same job, and the jobs behind it never ran."""
    actions = runner.cwd / "actions"
    actions.mkdir()
    (actions / "quit.py").write_text(EXITING)
    (runner.cwd / "m.yaml").write_text(
        "initial_state: start\nmetadata: {machine_name: quitter}\n"
        "transitions:\n  - {from: start, to: failed, event: error}\n"
        "actions:\n  start:\n    - {type: quit}\n"
    )
    proc = runner.start("run", "m.yaml")
    assert proc.wait(20) == 0, proc.output()
    assert "action quit failed: SystemExit: 3" in proc.output()
