"""``python -m nodenet`` runs the ``nodenet`` command."""

import sys

from nodenet.cli import main

sys.exit(main())
