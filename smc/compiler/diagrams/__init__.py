"""Diagrams from the model: Mermaid ``stateDiagram-v2``, Markdown pages and Graphviz DOT.

Pure functions, model in and text out (plus :func:`render_image`, which runs Graphviz). The
build (``smc build``) and ``smc diagram`` both call this interface:

``machine_diagrams(machine, *, detail="names") -> dict[str, str]``
    Relative output path -> text for one machine: ``{module}.mmd``, ``{module}.md`` and
    ``{module}.dot``; for a machine with groups also ``{module}.{group_id}.mmd`` and
    ``{module}.{group_id}.dot`` for each group, the main ``.mmd``/``.dot`` then being the
    overview. ``module`` is ``smc.compiler.names.module(machine.name)``; ``group_id`` is
    ``Group.id``. ``detail="full"`` adds the actions each state runs and the events they emit.

``system_diagrams(machines) -> dict[str, str]``
    ``system.mmd``, ``system.dot`` and ``system.md``: the machines as nodes, ``send_event`` and
    ``start_fsm`` actions as labelled edges, and machines that wait for an event nobody sends
    highlighted (the rule is in :func:`unsent_events`).

``render_image(dot_source, fmt) -> bytes``
    SVG or PNG rendered by the real ``dot`` binary; :class:`DiagramError` with a one-line
    message when ``dot`` is not installed or fails.

What the pictures show (docs/diagrams.md has the same with pictures):

- the initial state gets an edge from a start point (``[*] -->``); final states an edge to an
  end point (``--> [*]``);
- transitions between the same two nodes are drawn as one edge listing every event, in file
  order; ``timeout(N)`` events are labelled ``after Ns`` (UML's time event); contract-style
  transitions (made from ``allowed_transitions``) have no event and no label;
- every ``from: "*"`` transition is drawn once, from a dashed pseudo-state "any state" (which
  stands for every non-final state, as at run time), not as one edge per state;
- groups are Mermaid composite states and Graphviz ``cluster_`` subgraphs; every edge, also
  one between two groups, is drawn between the states themselves (Mermaid's own renderer
  draws edges between states in different composite states). Both formats are laid out left
  to right. Each group also gets a diagram of its own, with its states and every transition
  that enters or leaves it (the states outside drawn dashed).

- a statechart (``Machine.is_chart``) is drawn as its state tree (module ``chart``): compound
  states as Mermaid composite states and Graphviz clusters, each with its own start point;
  a parallel state's regions separated by ``--`` (Mermaid) or drawn as dashed clusters (DOT);
  history pseudo-states as ``H`` / ``H*``; eventless transitions unlabelled, internal ones
  labelled ``event (internal)``; edges to and from a compound clipped at its cluster in DOT
  (``compound=true``, ``lhead``/``ltail``). Its groups get no diagrams.

Node ids are derived from names deterministically (ASCII letters, digits and ``_``; a suffix
``_2``, ``_3``... tells apart names that would collide), and every label is escaped (Mermaid
``#NNN;`` entity codes, DOT quoting), so no name from YAML can break the diagram syntax. The
output has no timestamps, no paths and no random ids: the same model gives the same bytes.

The modules: ``model`` (the picture model: what a diagram draws, built from the compiler's
model), ``chart`` (a statechart's picture), ``mermaid``, ``dot`` and ``markdown`` (one
output format each), ``machine`` (one machine's files) and ``system`` (the machines built
together).
"""

from __future__ import annotations

from smc.compiler.diagrams.dot import DiagramError, ImageFormat, dot_label, render_image
from smc.compiler.diagrams.machine import machine_diagrams, machine_module
from smc.compiler.diagrams.mermaid import mermaid_text
from smc.compiler.diagrams.model import (
    ANY_STATE_LABEL,
    HEADER_TEXT,
    TIMER_PREFIX,
    Detail,
    IdAllocator,
    NodeKind,
    action_summary,
    event_label,
    timeout_seconds,
)
from smc.compiler.diagrams.system import (
    UNSENT_SHOWN,
    Link,
    LinkKind,
    system_diagrams,
    system_links,
    unsent_events,
)

__all__ = [
    "ANY_STATE_LABEL",
    "HEADER_TEXT",
    "TIMER_PREFIX",
    "UNSENT_SHOWN",
    "Detail",
    "DiagramError",
    "IdAllocator",
    "ImageFormat",
    "Link",
    "LinkKind",
    "NodeKind",
    "action_summary",
    "dot_label",
    "event_label",
    "machine_diagrams",
    "machine_module",
    "mermaid_text",
    "render_image",
    "system_diagrams",
    "system_links",
    "timeout_seconds",
    "unsent_events",
]
