"""The compiler: YAML -> model -> analysis -> code and diagrams.

One job per module:

- ``loader``      YAML text -> plain data plus the source position of every node;
- ``schema``      JSON Schema validation, errors mapped back to positions;
- ``normalize``   validated data in any of the three input styles -> ``model.Machine``;
- ``analysis``    semantic checks over the models (all files together);
- ``check``       the pipeline above, for ``smc check`` and ``smc build``;
- ``plan``        model -> what a generated module holds (a frozen ``ModulePlan``);
- ``pylayout``    Python laid out as black lays it out, and black where that is not enough;
- ``codegen``     plan -> typed Python module (Jinja2 templates + ``pylayout``);
- ``diagrams``    model -> Mermaid, Markdown, Graphviz;
- ``build``       writing outputs, the manifest and ``--check``;
- ``buildcache``  the no-op fast path of ``smc build`` (a fingerprint of its inputs);
- ``project``     the entry points ``smc build`` and ``smc diagram`` call: config, checker,
  fast path and build in one call, returning a report;
- ``machinecache`` ``smc run``'s machine files compiled to cached modules.

Nothing under ``smc.runtime`` may import from here.
"""
