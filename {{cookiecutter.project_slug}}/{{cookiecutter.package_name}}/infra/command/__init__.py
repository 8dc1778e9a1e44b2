"""Running a command: the command line, the data-to-model link, run folders, output and errors."""
