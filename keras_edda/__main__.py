import sys

from keras_edda.cli import main

sys.exit(main())
