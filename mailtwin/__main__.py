from mailtwin.cli import main

raise SystemExit(main())
