"""`python -m license_sync_local.bench`: see `license_sync_local.bench.cli`."""

import sys

from license_sync_local.bench.cli import main

sys.exit(main())
