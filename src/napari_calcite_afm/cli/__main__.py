"""``python -m napari_calcite_afm.cli``: the same as ``calcite-afm``."""

import sys

from . import main

sys.exit(main())
