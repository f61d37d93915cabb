"""The test suite of smc, a package so that test modules in different layers may share a
basename (``compiler/test_corpus.py`` and ``e2e/test_corpus.py``) and import the shared helpers
as ``tests.support``. Layout, markers and how to run one layer: README.md here."""
