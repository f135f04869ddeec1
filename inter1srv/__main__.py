from inter1srv.cli import main

raise SystemExit(main())
