import sys

from opentap.cli.main import main

sys.exit(main())
