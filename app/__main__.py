from app.ops.cli import main

raise SystemExit(main())
