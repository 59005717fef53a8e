import sys

from jaxreg.cli import main

sys.exit(main())
