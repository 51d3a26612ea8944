import sys

from tabgraa_sdv.cli import main

sys.exit(main())
