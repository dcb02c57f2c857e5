"""``python -m ssd_lib.datasets``: see :mod:`ssd_lib.datasets.cli`."""

from ssd_lib.datasets.cli import main

raise SystemExit(main())
