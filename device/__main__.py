import sys

from sttkb.cli import main

sys.exit(main())
