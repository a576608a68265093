"""``python -m edgecv.cli``: the ``edgecv`` command without the console script."""

import sys

from . import main

sys.exit(main())
