import sys

from verif.bench import main

sys.exit(main())
