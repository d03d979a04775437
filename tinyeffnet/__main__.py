"""`python -m tinyeffnet ...` is the same as the `tinyeffnet` command."""
import sys

from .cli import main

sys.exit(main())
