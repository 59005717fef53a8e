"""The command line end to end: run, show and plot on a tiny digits spec."""
