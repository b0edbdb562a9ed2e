from letsbot.cli import main

raise SystemExit(main())
