"""``python -m ssd_lib.pretrained``: see :mod:`ssd_lib.pretrained.cli`."""

from ssd_lib.pretrained.cli import main

raise SystemExit(main())
