"""`python -m genlab ARGS` is `genlab-train ARGS`."""

from genlab.cli.train import main

main()
