"""The socket monitor (being split into modules; see :mod:`smc.runtime.monitor.publisher`)."""

from smc.runtime.monitor.publisher import (
    DEFAULT_MAX_BUFFER_BYTES,
    DEFAULT_MAX_READERS,
    MAX_READERS_VARIABLE,
    SCHEMA_VERSION,
    MonitorError,
    MonitorPublisher,
    encode_record,
    follow,
    follow_lines,
    format_human,
    is_monitor_socket_name,
    monitor_dir,
    monitor_socket_path,
    reader_limit,
    safe_json_line,
)

__all__ = [
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_READERS",
    "MAX_READERS_VARIABLE",
    "SCHEMA_VERSION",
    "MonitorError",
    "MonitorPublisher",
    "encode_record",
    "follow",
    "follow_lines",
    "format_human",
    "is_monitor_socket_name",
    "monitor_dir",
    "monitor_socket_path",
    "reader_limit",
    "safe_json_line",
]
