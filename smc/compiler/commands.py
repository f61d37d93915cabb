"""``bash`` commands: where each ``{a.b.c}`` placeholder sits in the shell text, and the command
rewritten so that no value is ever pasted into it.

The command is parsed with tree-sitter-bash (a real shell grammar). Each placeholder is then
either refused (it sits where the shell would run or evaluate a value, or where its quoting
cannot be known) or replaced by a reference to an environment variable, written for the
quoting context it sits in:

==========================  ===============================  ==============================
context                     ``echo …{x}…`` written as        becomes
==========================  ===============================  ==============================
unquoted word part          ``a{x}b``                        ``a"${SMC_VALUE_1}"b``
double quotes, ``$"…"``     ``"a{x}b"``                      ``"a${SMC_VALUE_1}b"``
single quotes               ``'a{x}b'``                      ``'a'"${SMC_VALUE_1}"'b'``
``$'…'``                    ``$'a{x}b'``                     ``$'a'"${SMC_VALUE_1}"$'b'``
unquoted here-document      ``a{x}b``                        ``a${SMC_VALUE_1}b``
==========================  ===============================  ==============================

Inside ``$( … )`` and backquotes the same rules apply to the inner command. The runtime (the
``bash`` action) resolves each path of :attr:`CompiledCommand.values` against the context and
passes the value as ``SMC_VALUE_<n>`` in the child's environment, so the shell parses only the
text the author wrote. ``${NAME}`` (a ``{…}`` right after an active ``$``) is the shell's own
parameter expansion, never a placeholder. See ``docs/actions.md`` for the refused places.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from tree_sitter import Language, Node, Parser

from smc.catalog import BASH_VALUES_PARAM, bash_value_variable
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import Action, Machine, Position
from smc.runtime.context import PLACEHOLDER

_PLACEHOLDER_BYTES: Final = re.compile(PLACEHOLDER.pattern.encode())
_SHELL_NAME: Final = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")

#: Commands whose arguments are shell code or are run by a shell (remotely, or later).
_CODE_COMMANDS: Final = frozenset(
    {"eval", "let", "source", ".", "trap", "alias", "ssh", "su", "watch", "chroot"}
)
#: Commands that run the command their arguments name: a placeholder is refused until a plain
#: word (not an option, an assignment or a number) names that command.
_RUNNERS: Final = frozenset(
    {
        "exec",
        "command",
        "builtin",
        "coproc",
        "env",
        "xargs",
        "nohup",
        "nice",
        "setsid",
        "stdbuf",
        "sudo",
        "doas",
        "time",
        "timeout",
    }
)
_NOT_A_COMMAND: Final = re.compile(r"-.*|[A-Za-z_][A-Za-z0-9_]*=.*|[0-9.]+[smhd]?")
_ENV_ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: Builtins whose arguments name variables (bash evaluates a subscript in a variable name).
_VARIABLE_COMMANDS: Final = frozenset(
    {"read", "mapfile", "readarray", "unset", "getopts", "declare", "typeset", "local"}
)
#: Programs that run their ``-c`` argument as shell code.
_SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "su"})
_DASH_C: Final = re.compile(r"-[A-Za-z]*c[A-Za-z]*|--command")
#: ``[[ ]]``/``test`` operators under which bash evaluates an operand's value (arithmetic,
#: or a variable name with subscripts).
_EVALUATING_TESTS: Final = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v", "-R"})
_ARITHMETIC_NODES: Final = frozenset({"arithmetic_expansion", "c_style_for_statement", "subscript"})
_UNQUOTED_LEAVES: Final = frozenset({"word", "concatenation"})


@dataclass(frozen=True)
class Problem:
    """A placeholder the checker refuses: ``index`` is its rank among every ``{…}`` match of
    the command (for its position in the YAML), ``code`` an SMC code."""

    index: int
    code: str
    message: str
    hint: str


@dataclass(frozen=True)
class CompiledCommand:
    """The command as the runtime gets it: ``command`` references ``SMC_VALUE_<n>`` for the
    n-th path (1-based) of ``values``."""

    command: str
    values: tuple[str, ...]


@cache
def _parser() -> Parser:
    import tree_sitter_bash

    return Parser(Language(tree_sitter_bash.language()))


@dataclass(frozen=True)
class _Site:
    index: int
    start: int  # byte offsets of the ``{…}`` in the command
    end: int
    path: str
    context: str  # unquoted, double, single, ansi_c, heredoc


def _masked(data: bytes, matches: list[re.Match[bytes]]) -> bytes:
    """``data`` with each placeholder replaced by letters of the same length, so the grammar
    sees a plain word where the author wrote one (``{x}`` alone is not valid in every place,
    e.g. arithmetic). After ``$`` the braces are kept: ``${x}`` may be the shell's own."""
    out = bytearray(data)
    for match in matches:
        start, end = match.span()
        if start > 0 and data[start - 1 : start] == b"$":
            out[start + 1 : end - 1] = b"z" * (end - start - 2)
        else:
            out[start:end] = b"z" * (end - start)
    return bytes(out)


def _ancestors(node: Node | None) -> Iterator[Node]:
    while node is not None:
        yield node
        node = node.parent


def _text(node: Node, data: bytes) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _word_text(node: Node | None, data: bytes) -> str | None:
    """A plain word's text (None when it has quotes or expansions)."""
    if node is None:
        return None
    if node.type == "command_name" and node.named_child_count == 1:
        node = node.named_children[0]
    return _text(node, data) if node.type == "word" else None


def _heredoc_is_quoted(body: Node, data: bytes) -> bool:
    redirect = body.parent
    if redirect is None:
        return True
    for child in redirect.children:
        if child.type == "heredoc_start":
            return any(char in _text(child, data) for char in "'\"\\")
    return True


def _declared_evaluating_names(root: Node, data: bytes) -> set[str]:
    """Variables the command declares with ``-i`` (integer: assignments are arithmetic) or
    ``-n`` (a reference: the value names a variable)."""
    names: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "declaration_command":
            continue
        flags = [_text(c, data) for c in node.named_children if c.type == "word"]
        if not any(f[:1] in "-+" and ("i" in f or "n" in f) for f in flags):
            continue
        for child in node.named_children:
            target = (
                child.child_by_field_name("name") if child.type == "variable_assignment" else child
            )
            if target is not None and target.type in ("variable_name", "word"):
                names.add(_text(target, data))
    return names


def _refusal(node: Node, data: bytes, integers: set[str]) -> tuple[str, str] | None:
    """Why a placeholder whose smallest covering node is ``node`` is refused, as (code,
    reason), or None."""
    chain = list(_ancestors(node))
    if any(_is_arithmetic(current) for current in chain):
        return "SMC060", "is in an arithmetic context, where bash evaluates the value"
    previous: Node | None = None
    for current in chain:
        kind = current.type
        if kind == "comment":
            return "SMC060", "is in a comment, where nothing is substituted"
        if kind == "heredoc_body" and _heredoc_is_quoted(current, data):
            return "SMC060", "is in a quoted here-document, where nothing is substituted"
        if kind in ("heredoc_start", "heredoc_end"):
            return "SMC060", "is a here-document delimiter"
        if kind == "expansion":
            return "SMC060", "is inside a parameter expansion ${…}"
        if kind == "regex":
            return "SMC061", "is in a [[ =~ ]] regular expression, whose quoting is not known"
        if kind == "variable_name":
            return "SMC060", "names a variable"
        if kind == "function_definition" and previous == current.child_by_field_name("name"):
            return "SMC060", "names a function"
        if kind == "test_command" and previous is not None:
            evaluating = _EVALUATING_TESTS if current.children[0].type == "[[" else {"-v", "-R"}
            if _under_operator(previous, evaluating, data):
                return "SMC060", "is an operand of a test under which bash evaluates the value"
        if (
            kind == "command_substitution"
            and current.children[0].type == "`"
            and b"\\" in data[current.start_byte : current.end_byte]
        ):
            return "SMC061", "is in backquotes that hold backslashes (use $( … ))"
        if kind == "variable_assignment":
            name = current.child_by_field_name("name")
            if name is not None and _text(name, data) in integers:
                return (
                    "SMC060",
                    f"is assigned to {_text(name, data)!r}, declared -i or -n, so bash "
                    "evaluates the value",
                )
        if kind == "declaration_command":
            flags = [_text(c, data) for c in current.named_children if c.type == "word"]
            keyword = current.children[0].type
            if previous is None or previous.type != "variable_assignment":
                return "SMC060", f"names a variable (an argument of {keyword!r})"
            if any(f[:1] in "-+" and ("i" in f or "n" in f) for f in flags):
                return "SMC060", f"is a value given to {keyword!r} -i or -n"
        if kind == "command":
            reason = _command_refusal(current, previous, data)
            if reason is not None:
                return "SMC060", reason
        previous = current
    return None


def _is_arithmetic(node: Node) -> bool:
    """``$(( ))``, ``$[ ]``, ``for (( ))``, a subscript, or the ``(( ))`` command."""
    if node.type in _ARITHMETIC_NODES:
        return True
    return node.type == "compound_statement" and node.children[0].type == "(("


def _under_operator(node: Node, operators: set[str] | frozenset[str], data: bytes) -> bool:
    """Whether ``node`` (a test's expression) or an expression inside it has an operator
    from ``operators`` (the placeholder is somewhere under ``node``)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("unary_expression", "binary_expression", "parenthesized_expression"):
            if any(
                c.type == "test_operator" and _text(c, data) in operators for c in current.children
            ):
                return True
            stack.extend(current.named_children)
    return False


def _command_named_before(argument: Node, data: bytes) -> bool:
    """Whether a plain word before ``argument`` (an argument of a command runner) names the
    command it runs."""
    before = argument.prev_named_sibling
    while before is not None and before.type != "command_name":
        word = _word_text(before, data)
        if word is not None and not _NOT_A_COMMAND.fullmatch(word):
            return True
        before = before.prev_named_sibling
    return False


def _command_refusal(command: Node, argument: Node | None, data: bytes) -> str | None:
    """Why a placeholder inside ``argument`` (a child of ``command``) is refused."""
    if argument is not None and argument.type == "variable_assignment":
        return None  # ``NAME={x} cmd``: the value goes into cmd's environment, as data
    name_node = command.child_by_field_name("name")
    if argument is not None and argument == name_node:
        return "is the command's name (a value must not choose what runs)"
    name = _word_text(name_node, data)
    if name is not None:
        base = name.rsplit("/", 1)[-1]
        if base in _CODE_COMMANDS:
            return f"is an argument of {base!r}, which runs or evaluates its arguments"
        assignment = base == "env" and _ENV_ASSIGNMENT.match(
            _text(argument, data) if argument else ""
        )
        if (
            base in _RUNNERS
            and argument is not None
            and not assignment
            and not _command_named_before(argument, data)
        ):
            return f"may be the command that {base!r} runs (a value must not choose what runs)"
        if base in _VARIABLE_COMMANDS:
            return f"is an argument of {base!r}, whose arguments name variables"
        if base in ("test", "[") and any(
            _word_text(c, data) in ("-v", "-R") for c in command.named_children
        ):
            return f"is an argument of {base!r} with -v, which evaluates a variable name"
        if base == "printf" and argument is not None:
            before = argument.prev_named_sibling
            own = _word_text(argument, data) or ""
            if _word_text(before, data) == "-v" or own.startswith("-v"):
                return "is the variable name of printf -v"
    words = [_word_text(c, data) or "" for c in command.named_children]
    for position, word in enumerate(words):
        if word.rsplit("/", 1)[-1] in _SHELLS and any(
            _DASH_C.fullmatch(later) for later in words[position + 1 :]
        ):
            return f"is in a command that runs a shell script ({word} -c)"
    return None


def _context(node: Node, data: bytes) -> str | None:
    """The quoting context of a placeholder whose smallest covering node is ``node``."""
    kind = node.type
    if kind in _UNQUOTED_LEAVES:
        return "unquoted"
    if kind in ("string", "string_content"):
        return "double"
    if kind == "raw_string":
        return "single"
    if kind == "ansi_c_string":
        return "ansi_c"
    if kind in ("heredoc_body", "heredoc_content"):
        return "heredoc"
    return None


_REFERENCE: Final = {
    "unquoted": '"${{{}}}"',
    "double": "${{{}}}",
    "heredoc": "${{{}}}",
    "single": "'\"${{{}}}\"'",
    "ansi_c": "'\"${{{}}}\"$'",
}


def _bash_own(node: Node, start: int, end: int) -> bool:
    """Whether ``{…}`` at start..end is the braces of the shell's own ``${NAME}``."""
    for current in _ancestors(node):
        if current.type == "expansion":
            return current.start_byte == start - 1 and current.end_byte == end
        if current.end_byte - current.start_byte > end - start + 1:
            return False
    return False


def analyse_command(template: str) -> tuple[CompiledCommand | None, list[Problem]]:
    """The command rewritten for the runtime, or None with the problems that refuse it."""
    data = template.encode("utf-8", "surrogatepass")
    matches = list(_PLACEHOLDER_BYTES.finditer(data))
    if not matches:
        return CompiledCommand(template, ()), []
    masked = _masked(data, matches)
    tree = _parser().parse(masked)
    root = tree.root_node
    integers = _declared_evaluating_names(root, masked)
    problems: list[Problem] = []
    sites: list[_Site] = []
    for index, match in enumerate(matches):
        start, end = match.span()
        path = match.group(1).decode()
        node = root.descendant_for_byte_range(start, end)
        if node is None:  # pragma: no cover - the root always covers the text
            node = root
        if start > 0 and data[start - 1 : start] == b"$" and _bash_own(node, start, end):
            if not _SHELL_NAME.fullmatch(match.group(1)):
                written = match.group(0).decode()
                problems.append(
                    Problem(
                        index,
                        "SMC062",
                        f"'${written}' is neither a placeholder nor valid shell: '${{…}}' is "
                        "the shell's own parameter expansion",
                        f"for a dollar sign followed by the value write '\\${written}'",
                    )
                )
            continue
        if root.has_error:
            problems.append(
                Problem(
                    index,
                    "SMC061",
                    f"placeholder {{{path}}} is in a command that is not valid shell",
                    "fix the command's syntax (it is parsed as bash)",
                )
            )
            continue
        refusal = _refusal(node, masked, integers)
        context = _context(node, masked)
        backslashes = len(data[:start]) - len(data[:start].rstrip(b"\\"))
        if refusal is None and context is None:
            refusal = ("SMC061", f"is in a place the compiler does not know ({node.type})")
        if refusal is None and backslashes % 2 == 1 and context != "single":
            refusal = ("SMC061", "follows a backslash, which would escape its replacement")
        if refusal is not None:
            code, reason = refusal
            problems.append(
                Problem(
                    index,
                    code,
                    f"placeholder {{{path}}} {reason}",
                    _HINTS[code],
                )
            )
            continue
        assert context is not None
        sites.append(_Site(index, start, end, path, context))
    if problems:
        return None, problems
    return _rewrite(data, sites), []


_HINTS: Final = {
    "SMC060": "values are passed to the shell as data; compute what you need in the "
    "command from a quoted argument, e.g. x={name}; or use a user action",
    "SMC061": "put the placeholder in a plain word or a quoted string",
}


def _rewrite(data: bytes, sites: list[_Site]) -> CompiledCommand:
    numbers: dict[str, int] = {}
    out = bytearray()
    cursor = 0
    for site in sites:
        number = numbers.setdefault(site.path, len(numbers) + 1)
        out += data[cursor : site.start]
        out += _REFERENCE[site.context].format(bash_value_variable(number)).encode()
        cursor = site.end
    out += data[cursor:]
    return CompiledCommand(out.decode("utf-8", "surrogatepass"), tuple(numbers))


# ---- the checker's and the code generator's entry points ----------------------------------


def _bash_commands(machine: Machine) -> Iterator[tuple[Action, str]]:
    for state in machine.states:
        for action in (*state.actions, *state.on_exit):
            command = action.params.get("command")
            if action.type == "bash" and isinstance(command, str):
                yield action, command


def placeholder_position(start: Position, lines: list[str], index: int) -> Position:
    """Where the ``index``-th ``{…}`` of a string written at ``start`` is in the YAML source.

    A placeholder's characters are never escaped in YAML (``{``, ``}``, letters, digits,
    ``.``, ``-`` and ``_`` are written as they are in every scalar style), so the n-th match in
    the value is the n-th match in the source from the scalar's first character."""
    if not 1 <= start.line <= len(lines):
        return start
    text = "\n".join(lines[start.line - 1 :])
    offset = start.col - 1
    for number, match in enumerate(PLACEHOLDER.finditer(text, offset)):
        if number == index:
            before = text[: match.start()]
            line = start.line + before.count("\n")
            col = match.start() - (before.rfind("\n") + 1) + 1
            return Position(start.path, line, col)
    return start


def check_commands(machine: Machine, lines: list[str]) -> Iterator[Diagnostic]:
    """SMC060-062 for every ``bash`` command of ``machine``, at the placeholder's line:col."""
    for action, command in _bash_commands(machine):
        _, problems = analyse_command(command)
        start = action.param_pos.get("command", action.pos)
        for problem in problems:
            pos = placeholder_position(start, lines, problem.index)
            yield Diagnostic(
                pos.path, pos.line, pos.col, problem.code, problem.message, problem.hint
            )


def action_data(action: Action) -> dict[str, Any]:
    """The action as the generated ``STATE_ACTIONS`` holds it: a ``bash`` command with
    placeholders is rewritten (:func:`analyse_command`) and its value paths added under
    ``command_values``. Raises ValueError for a command the checker refuses."""
    data = action.as_data()
    command = data.get("command")
    data.pop(BASH_VALUES_PARAM, None)  # only the compiler writes it
    if action.type != "bash" or not isinstance(command, str) or not PLACEHOLDER.search(command):
        return data
    compiled, problems = analyse_command(command)
    if compiled is None:
        raise ValueError(f"{action.pos}: {problems[0].message}")
    data["command"] = compiled.command
    data[BASH_VALUES_PARAM] = list(compiled.values)
    return data
