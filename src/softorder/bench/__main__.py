"""``python -m softorder.bench``: see `softorder.bench`."""

import sys

from . import main

sys.exit(main())
