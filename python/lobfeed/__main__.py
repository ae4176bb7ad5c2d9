from lobfeed.cli import main

raise SystemExit(main())
