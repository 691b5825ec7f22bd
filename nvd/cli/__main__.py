"""``python -m nvd.cli``: the same as the ``nvd`` console script."""

import sys

from nvd.cli import main

sys.exit(main())
