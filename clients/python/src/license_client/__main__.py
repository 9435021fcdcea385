"""`python -m license_client ...` is the `license-client` command."""

from .cli import main

raise SystemExit(main())
