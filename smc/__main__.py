import sys

if sys.argv[1:2] == ["run"]:
    # Before anything else is imported: from here on SIGINT/SIGTERM are stop requests, never a
    # KeyboardInterrupt traceback halfway through an import (docs/runtime.md, "Stopping").
    from smc.runtime.signals import install_process_signals

    install_process_signals()

from smc.cli import main

raise SystemExit(main())
