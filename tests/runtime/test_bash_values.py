"""Values in ``bash`` commands: the compiler's rewrite (smc.compiler.commands), the checker's
refusals at the placeholder's line:col (SMC060-062), and the runtime's out-of-band values
(smc.runtime.shell), run through real shells with any text as the value."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smc.compiler.check import check_texts
from smc.compiler.commands import CompiledCommand, action_data, analyse_command
from smc.compiler.model import Action, Position
from smc.runtime.context import PLACEHOLDER
from smc.runtime.shell import MAX_ENTRY_BYTES, CommandValueError, command_environment


def compiled(template: str) -> CompiledCommand:
    result, problems = analyse_command(template)
    assert result is not None, problems
    return result


def run(template: str, context: dict[str, Any], shell: str, cwd: Path) -> bytes:
    command = compiled(template)
    environment = command_environment(command.command, list(command.values), context)
    result = subprocess.run(
        [shell, "-c", command.command],
        cwd=cwd,
        env=environment,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout


# ---- the rewrite, context by context ---------------------------------------------------------

REWRITES = [
    ("echo {v}", 'echo "${SMC_VALUE_1}"'),
    ("echo a{v}b", 'echo a"${SMC_VALUE_1}"b'),
    ('echo "a{v}b"', 'echo "a${SMC_VALUE_1}b"'),
    ("echo 'a{v}b'", "echo 'a'\"${SMC_VALUE_1}\"'b'"),
    ("echo $'a{v}b'", "echo $'a'\"${SMC_VALUE_1}\"$'b'"),
    ("cat <<EOF\na{v}b\nEOF", "cat <<EOF\na${SMC_VALUE_1}b\nEOF"),
    ("echo $(echo {v})", 'echo $(echo "${SMC_VALUE_1}")'),
    ("echo `echo {v}`", 'echo `echo "${SMC_VALUE_1}"`'),
    ("# don't\necho {v}", '# don\'t\necho "${SMC_VALUE_1}"'),
    ("cp {a} {b.c} && echo {a}", 'cp "${SMC_VALUE_1}" "${SMC_VALUE_2}" && echo "${SMC_VALUE_1}"'),
    # the author's own shell variables stay the shell's
    ('echo "${HOME}" $PATH ${m} {v}', 'echo "${HOME}" $PATH ${m} "${SMC_VALUE_1}"'),
    ("echo \\${v}", 'echo \\$"${SMC_VALUE_1}"'),  # an escaped $ is a literal dollar sign
    ("X={v} env", 'X="${SMC_VALUE_1}" env'),
]


@pytest.mark.parametrize(("template", "expected"), REWRITES)
def test_each_context_gets_its_reference(template: str, expected: str) -> None:
    assert compiled(template).command == expected


def test_values_are_listed_once_each_in_order() -> None:
    assert compiled("cp {a} {b.c} && echo {a}").values == ("a", "b.c")
    assert compiled('echo "${HOME}"') == CompiledCommand('echo "${HOME}"', ())


# ---- the property: any value is one literal string in every context -------------------------

#: (template segment, what bash prints for value v, also run by /bin/sh)
SEGMENTS: list[tuple[str, Callable[[str], str], bool]] = [
    ("printf '%s' {v}", lambda v: v, True),
    ("printf '%s' '<{v}>'", lambda v: f"<{v}>", True),
    ("printf '%s' \"<{v}>\"", lambda v: f"<{v}>", True),
    ("printf '%s' a{v}'b'\"c\"{v}", lambda v: f"a{v}bc{v}", True),
    ("cat <<EOF\n<{v}>\nEOF", lambda v: f"<{v}>\n", True),
    ("printf '%s' \"$(printf '%s' {v})\"", lambda v: v.rstrip("\n"), True),
    ("printf '%s' \"`printf '%s' '{v}'`\"", lambda v: v.rstrip("\n"), True),
    ("# don't forget: it's data\nprintf '%s' {v}", lambda v: v, True),
    ("printf '%s' $'<{v}>'", lambda v: f"<{v}>", False),  # $'…' is bash's
]


def _script(shell_is_bash: bool) -> tuple[str, list[Callable[[str], str]]]:
    chosen = [(text, want) for text, want, posix in SEGMENTS if posix or shell_is_bash]
    # segments end with a NUL, which no value holds
    return "\nprintf '\\000'\n".join(t for t, _ in chosen) + "\nprintf '\\000'\n", [
        w for _, w in chosen
    ]


TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=TEXT)
@example(value="x; touch PWNED")
@example(value="$(touch PWNED) `touch PWNED` ${IFS}")
@example(value="'\"\\\n# \nEOF\ntouch PWNED\n")
@example(value="(touch PWNED)")
@example(value="a[$(touch PWNED)]")
@example(value="-n")
@example(value="*")
@example(value="")
def test_any_value_is_one_literal_string_in_every_context(value: str, tmp_path: Path) -> None:
    for shell in ("bash", "/bin/sh"):
        script, wants = _script(shell == "bash")
        out = run(script, {"v": value}, shell, tmp_path)
        assert out.split(b"\0")[:-1] == [want(value).encode() for want in wants], shell
    assert list(tmp_path.iterdir()) == [], "the value ran as code"


# ---- the runtime: values out of band, or the action fails ----------------------------------


def test_an_unresolved_placeholder_is_an_error_naming_it() -> None:
    command = compiled("echo {data.text}")
    with pytest.raises(CommandValueError, match=re.escape("{data.text}")):
        command_environment(command.command, list(command.values), {"text": "hi"})


@pytest.mark.parametrize("value", ["a\0b", "\ud800"])
def test_a_value_a_command_cannot_take_is_an_error(value: str) -> None:
    command = compiled("echo {v}")
    with pytest.raises(CommandValueError, match=re.escape("{v}")):
        command_environment(command.command, list(command.values), {"v": value})


def test_the_longest_value_linux_takes_runs_and_one_byte_more_is_an_error(tmp_path: Path) -> None:
    """A 3 MB value (job data is allowed 4 MiB) failed at the start with ``OSError: Argument
    list too long``, and its job was retried for nothing; now the error says why, and the
    longest value one environment entry can hold still reaches the command whole."""
    name_bytes = len("SMC_VALUE_1=") + 1
    longest = "x" * (MAX_ENTRY_BYTES - name_bytes)
    out = run("printf %s {v} | wc -c", {"v": longest}, "sh", tmp_path)
    assert int(out) == len(longest)
    command = compiled("echo {v}")
    with pytest.raises(CommandValueError, match=r"\{v\} is 131,060 bytes"):
        command_environment(command.command, list(command.values), {"v": longest + "x"})
    # each under the limit, all of them together over what the kernel takes (ARG_MAX)
    many = compiled(" ".join(f"echo {{v{n}}};" for n in range(17)))
    values = {f"v{n}": "y" * 130_000 for n in range(17)}
    with pytest.raises(CommandValueError, match="in all; pass larger data through a file"):
        command_environment(many.command, list(many.values), values)


def test_values_are_text_as_elsewhere() -> None:
    command = compiled("echo {n} {none} {flag} {items}")
    environment = command_environment(
        command.command, list(command.values), {"n": 3, "none": None, "flag": True, "items": [1]}
    )
    assert environment is not None
    assert [environment[f"SMC_VALUE_{n}".encode()] for n in range(1, 5)] == [
        b"3",
        b"",
        b"true",
        b"[1]",
    ]


def test_an_uncompiled_command_with_placeholders_is_refused() -> None:
    with pytest.raises(CommandValueError, match="command_values"):
        command_environment("echo {v}", None, {"v": "x"})
    assert command_environment("echo hi", None, {}) is None
    assert command_environment('echo "${HOME}"', [], {}) is None


def test_the_code_generator_writes_the_rewrite_and_only_its_own_value_list() -> None:
    pos = Position("m.yaml", 1, 1)
    bash = Action("bash", {"command": "echo {v}", "command_values": ["secret"]}, pos)
    assert action_data(bash) == {
        "type": "bash",
        "command": 'echo "${SMC_VALUE_1}"',
        "command_values": ["v"],
    }
    plain = Action("bash", {"command": "true", "command_values": ["secret"]}, pos)
    assert action_data(plain) == {"type": "bash", "command": "true"}
    log = Action("log", {"message": "{v}"}, pos)
    assert action_data(log) == {"type": "log", "message": "{v}"}


# ---- the checker: refused places, at the placeholder ----------------------------------------

REFUSED = [
    ("echo hi # note {v}", "SMC060"),
    ("# don't\necho hi # {v}", "SMC060"),
    ("cat <<'EOF'\n{v}\nEOF", "SMC060"),
    ('cat <<"EOF"\n{v}\nEOF', "SMC060"),
    ("cat <<\\EOF\n{v}\nEOF", "SMC060"),
    ("cat <<{v}\nx\n{v}", "SMC060"),
    ("echo $(( {v} + 1 ))", "SMC060"),
    ("echo $[ {v} + 1 ]", "SMC060"),
    ("(( {v} > 1 ))", "SMC060"),
    ("for (( i = {v}; i < 3; i++ )); do :; done", "SMC060"),
    ("let n={v}", "SMC060"),
    ("a[{v}]=1", "SMC060"),
    ("echo ${a[{v}]}", "SMC060"),
    ("echo ${x:-{v}}", "SMC060"),
    ("echo ${!{v}}", "SMC060"),
    ("[[ -v {v} ]]", "SMC060"),
    ("[[ {v} -eq 1 ]]", "SMC060"),
    ("[[ $(echo {v}) -lt 1 ]]", "SMC060"),
    ("[ -v {v} ]", "SMC060"),
    ("declare -i n={v}", "SMC060"),
    ("declare -i n\nn={v}", "SMC060"),
    ("declare {v}=1", "SMC060"),
    ("printf -v {v} x", "SMC060"),
    ("read {v}", "SMC060"),
    ("unset {v}", "SMC060"),
    ("for {v} in a; do :; done", "SMC060"),
    ("eval echo {v}", "SMC060"),
    ('eval "$(echo {v})"', "SMC060"),
    ("source {v}", "SMC060"),
    (". {v}", "SMC060"),
    ("trap {v} EXIT", "SMC060"),
    ("bash -c 'echo {v}'", "SMC060"),
    ('sh -ec "echo {v}"', "SMC060"),
    ("sudo -u me sh -c {v}", "SMC060"),
    ("xargs {v} < list", "SMC060"),
    ("exec {v}", "SMC060"),
    ("timeout 5 {v}", "SMC060"),
    ("chroot /srv {v}", "SMC060"),
    ("ssh host cat {v}", "SMC060"),
    ("{v} --help", "SMC060"),
    ("{v}() { :; }", "SMC060"),
    ("echo \\{v}", "SMC061"),
    ('echo "a\\{v}"', "SMC061"),
    ("echo `echo \\`echo {v}\\``", "SMC061"),
    ("[[ x =~ ^{v}$ ]]", "SMC061"),
    ("echo {v} $(", "SMC061"),
    ("echo ${v.w}", "SMC062"),
]


def _machine(command: str) -> str:
    body = "".join(f"        {line}\n" for line in command.split("\n"))
    return (
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: job_done}\n"
        "  - {from: a, to: b, event: error}\n"
        "actions:\n  a:\n    - type: bash\n      command: |-\n" + body
    )


def _expected_position(command: str) -> tuple[int, int]:
    """The first ``{v…}``: line 9 is the command's first line, indented by 8."""
    match = next(m for m in PLACEHOLDER.finditer(command) if m.group(1).startswith("v"))
    before = command[: match.start()]
    return 9 + before.count("\n"), 9 + match.start() - (before.rfind("\n") + 1)


@pytest.mark.parametrize(("command", "code"), REFUSED)
def test_a_refused_place_is_an_error_at_the_placeholder(command: str, code: str) -> None:
    result = check_texts([("m.yaml", _machine(command))])
    got = [(d.code, d.line, d.col) for d in result.diagnostics if d.code.startswith("SMC06")]
    line, col = _expected_position(command)
    assert got[:1] == [(code, line, col)], (command, result.diagnostics)
    assert all(d.is_error for d in result.diagnostics if d.code.startswith("SMC06"))


ACCEPTED = [
    "echo 'Processing job {id}' && sleep 2 && echo 'Job {id} completed'",
    "echo 'Processed {job_id}' > data/output/{job_id}.txt",
    "cat {payload.file} | tr '[:lower:]' '[:upper:]' > data/temp/{job_id}.txt",
    "echo '[{timestamp}] Task {payload.job_id} completed' >> logs/controller.log",
    'echo "${HOME}" {v}',
    "X={v} env",
    "env X={v} prog",
    "exec sleep {v}",
    "nice -n 5 gzip {v}",
    "export X={v}",
    "printf -v out '%s' {v}",
    "[ -f {v} ] && [[ {v} == *.txt ]]",
    "[ {v} -gt 1 ]",  # test's -gt reads an integer, it evaluates nothing
    "case {v} in {w}) echo same;; esac",
    "cat <<EOF\n$(echo {v})\n{w}\nEOF",
    "f() { echo {v}; }; f",
    "echo {v} # a comment without placeholders",
]


@pytest.mark.parametrize("command", ACCEPTED)
def test_ordinary_commands_are_accepted(command: str) -> None:
    result = check_texts([("m.yaml", _machine(command))])
    assert [d for d in result.diagnostics if d.code.startswith("SMC06")] == []
