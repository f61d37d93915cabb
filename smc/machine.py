"""The small base that every generated machine module imports.

Generated classes are self-contained (their transition table is data in the module); this
module only holds what they share: the exception, the listener type, ``Sent`` (what a
statechart's ``send`` actions record), ``ProcessorType`` (what ``machine.processor_type``
is) and ``GeneratedMachine``, the Protocol every generated class satisfies. Keep it
import-light: it is loaded by every generated module and by the worker runtime.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeGuard

#: ``fn(source, event, target)``, called after each transition. Each generated module has
#: its own ``Listener``, typed with the machine's ``State`` and ``Event``.
Listener = Callable[[Any, Any, Any], object]


class IllegalTransition(ValueError):
    """An event was fired that the machine does not accept in its current state."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        self.machine = machine
        self.state = str(state)
        self.event = str(event)
        super().__init__(f"{machine}: event {self.event!r} is not allowed in state {self.state!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.machine, self.state, self.event))


class MissingPayload(TypeError):
    """An event was fired without a field its payload schema requires (``required:``), where
    a guard or action of the class would read it. A ``TypeError``, as a call of the event's
    method without that keyword argument is; nothing has changed."""

    def __init__(self, machine: str, event: str, field: str) -> None:
        self.machine = machine
        self.event = str(event)
        self.field = field
        super().__init__(
            f"{machine}: event {self.event!r} needs the payload field {field!r}, which its "
            "payload schema requires"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.machine, self.event, self.field))


@dataclass(frozen=True, slots=True)
class Sent:
    """An event a statechart sent itself with a ``send`` action (docs/language.md, "Actions
    in the class"), as its ``take_sent()`` returns it: ``event`` (one of the machine's own),
    ``delay`` in seconds (0: deliver it once the step that sent it is over, SCXML's external
    queue; else that many seconds later), ``payload`` (None when the action gives none) and
    ``send_id`` (the id a ``send`` with ``id_location`` drew for it, else None).
    The class has no clock: whoever drives it delivers each with ``fire``."""

    event: str
    delay: float
    payload: Mapping[str, Any] | None
    #: the id the ``send`` gave it (``id_location``: SCXML's generated send id), else None
    send_id: str | None = None


#: The type of SCXML's event I/O processor (SCXML C.1), the one processor a generated class
#: sends and receives through, and the short form SCXML lets a processor declare for it.
SCXML_PROCESSOR = "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"
SCXML_PROCESSOR_SHORT = "scxml"


class ProcessorType(str):
    """The type of an event I/O processor (``machine.processor_type``: SCXML's
    ``_event.origintype``). Its value is the processor's URI, which is what it prints,
    hashes and serialises as; it also equals the short form the processor declares
    (SCXML 6.2: "scxml" for the SCXML processor), so ``t == "scxml"`` and ``t == URI``
    both hold, as SCXML lets a document test either.

    Caveats of an equality wider than the string's: ``==`` is not transitive through it
    (``"scxml" != URI``), and its hash is the URI's, so a dict or set keyed by the short
    form does not find it (``{"scxml": 1}.get(t)`` is None; ``{URI: 1}[t]`` is 1). It
    pickles and copies as itself; written as JSON (``json.dumps``, a snapshot kept in a
    store) it is the URI, a plain string, read back as such (equal to the URI only)."""

    __slots__ = ()

    #: processor URI -> the short form it declares
    SHORT_FORMS: ClassVar[Mapping[str, str]] = {SCXML_PROCESSOR: SCXML_PROCESSOR_SHORT}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        mine = str(self)
        return mine == str(other) or self.SHORT_FORMS.get(mine) == str(other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"ProcessorType({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),))


class GeneratedMachine(Protocol):
    """What every class ``smc build`` generates has, for code that takes any machine (the
    worker runtime, ``smc.testing``): ``type[GeneratedMachine]`` in place of ``type[Any]``.

    Generated classes type their own members precisely (``fire(event: Event | EventName)``,
    ``INITIAL_STATE: ClassVar[State]``); the Protocol can only name what all of them share:

    - state and event parameters are ``Any``: code that takes any machine passes names it
      read at run time (the runtime, from its database), which the class checks itself;
    - class constants that hold the machine's own ``State`` or ``Event`` have ``Any`` in
      their place: a class variable is mutable, hence invariant, so ``ClassVar[StrEnum]``
      would not accept a class's ``ClassVar[State]``;
    - the nested ``State`` and ``Event`` enums are not members: mypy and pyright do not
      match a nested class against a Protocol attribute. ``state_enum()`` and
      ``event_enum()`` reach them.
    """

    MACHINE_NAME: ClassVar[str]
    STYLE: ClassVar[str]
    INITIAL_STATE: ClassVar[Any]
    FINAL_STATES: ClassVar[frozenset[Any]]
    TRANSITIONS: ClassVar[tuple[tuple[Any, Any, Any], ...]]
    STATE_ACTIONS: ClassVar[Mapping[Any, tuple[Mapping[str, Any], ...]]]
    ACTION_SOURCES: ClassVar[Mapping[Any, tuple[str, ...]]]
    GROUPS: ClassVar[Mapping[str, tuple[Any, ...]]]
    TIMEOUTS: ClassVar[Mapping[Any, tuple[tuple[float, Any], ...]]]
    EVENT_METHODS: ClassVar[Mapping[Any, str]]
    EVENT_CONTEXT_MAPS: ClassVar[Mapping[Any, Mapping[str, str]]]

    def __init__(self, state: Any = None) -> None: ...

    @property
    def state(self) -> enum.StrEnum: ...

    @property
    def is_final(self) -> bool: ...

    def fire(self, event: Any) -> enum.StrEnum: ...

    def can_fire(self, event: Any) -> bool: ...

    def allowed_events(self) -> tuple[enum.StrEnum, ...]: ...

    def add_listener(self, listener: Any) -> None: ...

    def remove_listener(self, listener: Any) -> None: ...


class ChartMachine(GeneratedMachine, Protocol):
    """What a generated statechart class has beyond ``GeneratedMachine`` (see
    ``templates/chart.py.jinja``): the dispatch table of situations and the steps that the
    runtime and ``smc.testing`` follow. ``is_chart`` tells one from a flat class."""

    CONFIGURATIONS: ClassVar[tuple[frozenset[Any], ...]]
    STATE_VIEWS: ClassVar[tuple[Any, ...]]
    FINAL_SITUATIONS: ClassVar[frozenset[int]]
    DISPATCH: ClassVar[tuple[Mapping[str, tuple[int, Any, int]], ...]]
    STEPS: ClassVar[tuple[tuple[tuple[str, str], ...], ...]]
    INITIAL_STEP: ClassVar[int]
    EXIT_ACTIONS: ClassVar[Mapping[Any, tuple[Mapping[str, Any], ...]]]
    EXIT_ACTION_SOURCES: ClassVar[Mapping[Any, tuple[str, ...]]]

    @property
    def configuration(self) -> frozenset[Any]: ...

    @property
    def situation(self) -> int: ...

    def in_state(self, state: Any) -> bool: ...

    def step_of(self, event: Any) -> tuple[tuple[str, str], ...] | None: ...

    @property
    def initial_steps(self) -> tuple[int, ...]: ...

    def fire_steps(
        self, event: Any, payload: Mapping[str, Any] | None = None
    ) -> tuple[int, ...]: ...
    def take_sent(self) -> tuple[Sent, ...]: ...


#: JSON Schema type -> whether a Python value (as ``json.loads`` makes it) is of it.
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, Mapping),
}


def checked_fields(
    owner: str, data: Mapping[str, Any], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """``data`` as the keyword arguments of a generated ``Context`` (``Context.from_dict``),
    checked against the object ``schema`` (its ``CONTEXT_SCHEMA``) for what the dataclass
    itself would let through: ``ValueError`` for a field it does not have, a field without a
    default left out, or a value not of its field's JSON ``type``. The rest of the schema
    (``minimum``, ``enum``, ``items``, ...) is checked by the runtime where data enters: the
    generated module needs nothing but this package."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{owner}: expected a mapping of fields, not {type(data).__name__}")
    properties: Mapping[str, Any] = schema.get("properties", {})
    unknown = sorted(repr(key) for key in data if key not in properties)
    if unknown:
        raise ValueError(f"{owner}: no field {', '.join(unknown)}")
    missing = [repr(name) for name in schema.get("required", ()) if name not in data]
    if missing:
        raise ValueError(f"{owner}: {', '.join(missing)} must be given (no default)")
    for name, value in data.items():
        written = properties[name].get("type")
        types = [written] if isinstance(written, str) else list(written or ())
        if types and not any(_JSON_TYPES.get(t, _any)(value) for t in types):
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(f"{owner}.{name}: {shown} is not of type {' or '.join(types)}")
    return dict(data)


def _any(value: Any) -> bool:
    return True


def is_chart(machine: type[GeneratedMachine]) -> TypeGuard[type[ChartMachine]]:
    """Whether ``machine`` is a generated statechart class (it has a ``DISPATCH`` table)."""
    return hasattr(machine, "DISPATCH")


def state_enum(machine: type[GeneratedMachine]) -> type[enum.StrEnum]:
    """The machine's ``State`` enum: the class of its initial state."""
    states: type[enum.StrEnum] = type(machine.INITIAL_STATE)
    return states


def event_enum(machine: type[GeneratedMachine]) -> type[enum.StrEnum]:
    """The machine's ``Event`` enum (``machine.Event``, which the Protocol cannot name)."""
    events: type[enum.StrEnum] = getattr(machine, "Event")  # noqa: B009
    return events
