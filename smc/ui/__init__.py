"""The web monitor (``smc ui``): a page that shows every machine of a database live.

- :mod:`~smc.ui.app`: the Starlette application, :func:`create_app`;
- :mod:`~smc.ui.feed`: one reader of every machine's monitor socket, fanned out to the browsers
  through bounded queues;
- :mod:`~smc.ui.diagrams`: a machine type's SVG diagram, drawn by the compiler and Graphviz,
  cleaned and marked with state names;
- :mod:`~smc.ui.security`: token, host and CSRF checks, security headers;
- :mod:`~smc.ui.server`: uvicorn, for ``smc ui``.

The page itself is ``static/`` (HTML, CSS and a small script, shipped in the package: no
network needed). See docs/monitor.md, "The web monitor".
"""

from smc.ui.app import create_app

__all__ = ["create_app"]
