"""``python -m nilearn_vlm.cli``: the ``nilearn-vlm`` command."""

import sys

from nilearn_vlm.cli import main

sys.exit(main())
