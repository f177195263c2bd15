import sys

from factoryctl.cli.app import main

sys.exit(main())
