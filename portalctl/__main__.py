from portalctl.cli import main

raise SystemExit(main())
