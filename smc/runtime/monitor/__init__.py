"""The socket monitor: every running machine publishes its transitions, job claims and errors as
JSON lines on a Unix stream socket, and readers follow them.

- :mod:`~smc.runtime.monitor.paths`: where a machine's monitor socket lives (shared by both
  sides), :func:`name_holder` (the live machine holding a name on this host), and
  :class:`MonitorError`;
- :mod:`~smc.runtime.monitor.publisher`: the machine's side, :class:`MonitorPublisher` (bounded
  readers, bounded buffers, never blocks the machine) and :func:`encode_record`;
- :mod:`~smc.runtime.monitor.reader`: the readers' side, :func:`follow` and
  :func:`follow_lines` (every machine of a directory, merged);
- :mod:`~smc.runtime.monitor.terminal`: records rendered for a terminal (``smc monitor``).

Record schema (version 1): ``{"v": 1, "kind": ..., "machine": ..., "from": ..., "event": ...,
"to": ..., "job_id": ..., "ts": <epoch seconds>, ...}``; see ``docs/monitor.md``. Every public
name is importable from this package.
"""

from smc.runtime.monitor.paths import (
    MonitorError,
    NameHolder,
    is_monitor_socket_name,
    monitor_dir,
    monitor_socket_path,
    name_holder,
)
from smc.runtime.monitor.publisher import (
    DEFAULT_MAX_BUFFER_BYTES,
    DEFAULT_MAX_READERS,
    MAX_READERS_VARIABLE,
    SCHEMA_VERSION,
    MonitorPublisher,
    encode_record,
    reader_limit,
)
from smc.runtime.monitor.reader import follow, follow_lines
from smc.runtime.monitor.terminal import format_human, safe_json_line

__all__ = [
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_READERS",
    "MAX_READERS_VARIABLE",
    "SCHEMA_VERSION",
    "MonitorError",
    "MonitorPublisher",
    "NameHolder",
    "encode_record",
    "follow",
    "follow_lines",
    "format_human",
    "is_monitor_socket_name",
    "monitor_dir",
    "monitor_socket_path",
    "name_holder",
    "reader_limit",
    "safe_json_line",
]
