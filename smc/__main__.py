from smc.cli import main

raise SystemExit(main())
