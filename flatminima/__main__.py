"""``python -m flatminima`` runs the command line."""

import sys

from flatminima.cli import main

sys.exit(main())
