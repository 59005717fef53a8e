"""Plots of a results folder (placeholder until the plotting module lands)."""


def plot_dir(out):
    return []
