"""The console scripts, one module each (genlab-train, -eval, -generate, -export, -attention):
parse the command line, call `genlab.run`, print the result."""
