"""Tests of the compiler: the machine-file schema and loader, the checker and its diagnostics,
names and paths, the code generator, the diagrams, ``smc build``, the emitted tests, and the
compatibility corpus compiled."""
