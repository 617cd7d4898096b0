import sys

from spikesmith.cli import main

sys.exit(main())
