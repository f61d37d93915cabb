"""YAML names -> Python identifiers: the conversion rules of docs/language.md."""

from __future__ import annotations

import functools
import keyword

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smc.compiler import names


@pytest.mark.parametrize(
    ("name", "snake", "member", "pascal"),
    [
        ("New Job", "new_job", "NEW_JOB", "NewJob"),
        ("newJob", "new_job", "NEW_JOB", "NewJob"),
        ("HTTPServer", "http_server", "HTTP_SERVER", "HTTPServer"),
        ("patient-records", "patient_records", "PATIENT_RECORDS", "PatientRecords"),
        ("timeout(5)", "timeout_5", "TIMEOUT_5", "Timeout5"),
        ("timeout(0.5)", "timeout_0_5", "TIMEOUT_0_5", "Timeout05"),
        ("__waiting__", "waiting", "WAITING", "Waiting"),
        ("123abc", "n_123abc", "N_123ABC", "M123abc"),
        ("class", "class_", "CLASS", "Class"),
        ("none", "none", "NONE", "None_"),
        ("ﬁle", "file", "FILE", "File"),  # NFKC, as Python does for identifiers
        ("Ⅻ", "xii", "XII", "XII"),
        ("état", "état", "ÉTAT", "État"),
    ],
)
def test_conversions(name: str, snake: str, member: str, pascal: str) -> None:
    assert names.snake(name) == snake
    assert names.module(name) == snake
    assert names.member(name) == member
    assert names.pascal(name) == pascal


@pytest.mark.parametrize("name", ["", "---", "???", "(*)", " "])
def test_names_with_nothing_usable_are_refused(name: str) -> None:
    assert names.snake(name) is None
    assert names.member(name) is None
    assert names.pascal(name) is None


def test_event_methods_avoid_the_generated_class_attributes() -> None:
    for chart in (False, True):
        assert names.method("fire", chart=chart) == "fire_"
        assert names.method("can fire", chart=chart) == "can_fire_"
        assert names.method("state", chart=chart) == "state_"
        assert names.method("snapshot", chart=chart) == "snapshot_"
        assert names.method("start", chart=chart) == "start"
    # what only a chart's class has: a flat machine's event keeps its name
    assert names.method("job", chart=False) == "job"
    assert names.method("job", chart=True) == "job_"
    assert names.method("take sent", chart=True) == "take_sent_"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_every_result_is_an_identifier_that_is_not_a_keyword(name: str) -> None:
    chart_method = functools.partial(names.method, chart=True)
    for convert in (names.snake, names.member, chart_method, names.pascal, names.module):
        ident = convert(name)
        if ident is not None:
            assert ident.isidentifier()
            assert not keyword.iskeyword(ident)
            assert convert(name) == ident  # deterministic


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", fullmatch=True))
def test_snake_case_names_are_kept(name: str) -> None:
    expected = name + "_" if keyword.iskeyword(name) else name
    assert names.snake(name) == expected


def test_every_attribute_of_the_committed_generated_classes_is_reserved() -> None:
    """An event or a named condition named like one of the class's own attributes replaced
    it: an event `snapshot` made `m.snapshot()` fire, an event `job` failed the module's
    import ("'job' in __slots__ conflicts with class variable"). Each attribute the generated
    classes of `generated/` have, but those made from the machine's names (event methods,
    hooks), must be one the names module avoids."""
    import importlib
    import inspect
    import pkgutil

    import generated

    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"generated.{info.name}")
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and cls.__module__ == module.__name__):
                continue
            if not hasattr(cls, "EVENT_METHODS"):
                continue
            own = set(cls.EVENT_METHODS.values())
            for klass in cls.__mro__:
                if klass.__module__.startswith(("generated", "smc")):
                    attributes = {*vars(klass), *getattr(klass, "__slots__", ())}
                    for name in attributes:
                        hook = name.startswith("on_") and name != "on_log"
                        if not name.startswith("_") and name not in own and not hook:
                            found.setdefault(name, cls.__name__)
    # the data attributes a chart adds only when it needs them (templates/chart.py.jinja)
    found.update(dict.fromkeys(("job", "session_id", "context", "payload"), "chart"))
    assert {
        name: owner for name, owner in found.items() if name not in names.GENERATED_MEMBERS
    } == {}
    for name in found.keys() & (names.RESERVED_METHODS | names.CHART_ONLY_METHODS):
        if names.snake(name) == name:  # (an event method is never `State` or `FIRE`)
            assert names.method(name, chart=True) == name + "_"
