"""Reports: a results folder's files, their statistics, plots and comparisons."""
