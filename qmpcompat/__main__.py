import sys

from qmpcompat.cli import main

sys.exit(main())
