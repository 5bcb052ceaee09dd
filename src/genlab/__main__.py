"""``python -m genlab``: the command line, also the entry point torchrun starts in each process."""
import sys

from .cli import main

sys.exit(main())
