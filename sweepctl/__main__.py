from sweepctl.cli import main

raise SystemExit(main())
