"""``jaxreg report``: one self-contained HTML page of results folders, read back by a browser.

The page is written for a committed grid, for three searches compared, and for a small successive
halving sweep trained here; each is opened from ``file://`` in headless Chromium with the network
cut off, and must draw every panel (each figure's element holds plotly's ``svg.main-svg``) with
nothing on the console. Folder strings are escaped (a hostile case name does not run), the page
is the same bytes for the same folders, every figure passes plotly's own validator, and the
importance measure is checked against a by-hand computation.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import headless
from jaxreg import cli
from jaxreg.errors import InputError
from jaxreg.report import html as report_html
from jaxreg.report.folder import load_folder, load_folders
from jaxreg.report.store import spec_parts, spec_sha256

pytest.importorskip("plotly")

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "results" / "search-grid"
COMPARED = [GRID, ROOT / "results" / "search-random", ROOT / "results" / "search-coarse-to-fine"]
browser = pytest.mark.skipif(headless.CHROMIUM is None, reason="Chromium is not installed (CI's .ci/run installs it)")


def _figure_ids(page: str) -> list[str]:
    data = re.search(r'<script type="application/json" id="jaxreg-figures">(.*?)</script>', page, flags=re.S)[1]
    return sorted(json.loads(data))


def _drawn(dom: str, ids: list[str]) -> dict[str, bool]:
    """Whether each figure's element holds a plotly svg: the DOM from its start to the next
    figure's start (figure elements do not nest)."""
    starts = sorted((dom.index(f'id="{i}"'), i) for i in ids)
    ends = [s for s, _ in starts[1:]] + [dom.index('id="jaxreg-figures"')]
    return {i: 'class="main-svg"' in dom[s:e] for (s, i), e in zip(starts, ends)}


def _render(page: Path, tmp_path: Path, name: str) -> str:
    """Opens the page offline; checks it drew every figure with no console output; keeps a screenshot."""
    text = page.read_text()
    dom, console = headless.dom(page, tmp_path / f"profile-{name}")
    assert not console, "\n".join(console)
    body = re.search(r"<body[^>]*>", dom)[0]
    assert "data-error" not in body and "data-rendered" in body and "data-first-screen" in body, body
    drawn = _drawn(dom, _figure_ids(text))
    assert drawn and all(drawn.values()), drawn
    png = tmp_path / f"report-{name}.png"
    assert not headless.screenshot(page, tmp_path / f"profile-{name}", png)
    assert png.stat().st_size > 10_000
    print(f"screenshot: {png}")
    return dom


def test_the_page_is_self_contained_and_the_same_bytes_each_time(tmp_path):
    first, second = report_html.write_report([GRID], tmp_path / "a.html"), report_html.write_report([GRID], tmp_path / "b.html")
    text = first.read_text()
    assert first.read_bytes() == second.read_bytes()
    scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    bundles = [s for s in scripts if "plotly.js" in s[:1000]]
    assert len(bundles) == 1  # the bundle, once
    ours = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text.replace(bundles[0], ""))  # the page but plotly and images
    assert text.count("plotly.js v") == 1 or "plotly.js" in text
    assert "<script src" not in ours and "http" not in ours.replace("http-equiv", "")  # nothing to fetch
    assert re.findall(r'(?:src|href)="([^"#][^"]*)"', ours) == []
    ids = _figure_ids(text)
    assert {f"f0-{p}" for p in ("parcoords", "metric", "pairs", "importance", "best", "curves")} <= set(ids)


def test_every_figure_passes_plotlys_validator():
    import plotly.graph_objects as go

    figures = {}
    page = report_html.build_page(load_folders(COMPARED), plotly_js="")
    data = re.search(r'id="jaxreg-figures">(.*?)</script>', page, flags=re.S)[1]
    figures.update(json.loads(data))
    for name, figure in figures.items():
        go.Figure(figure)  # raises on a property plotly does not know


def test_the_table_has_every_config_with_mean_and_standard_error_over_seeds():
    folder = load_folder(GRID)
    page = report_html.build_page([folder], plotly_js="")
    assert page.count('<tbody class="cfg">') == len(folder.rows) == 16
    assert page.count('<tr class="seed" hidden>') == len(folder.records) == 48
    best = folder.rows[0]
    values = [r["metrics"]["val_loss"] for r in folder.trials[best["config_id"]]]
    se = np.std(values, ddof=1) / np.sqrt(len(values))
    assert f"{np.mean(values):.4g} &plusmn; {se:.4g}" in page
    first = re.search(r'<tbody class="cfg"><tr>(.*?)</tr>', page)[1]
    keys = [float(v) for v in re.findall(r'data-v="([0-9.e-]+)"', first)]
    assert any(k == pytest.approx(np.mean(values), rel=1e-12) for k in keys)  # the sort key: the full value


@browser
def test_a_grid_report_draws_every_panel_offline(tmp_path):
    page = report_html.write_report([GRID], tmp_path / "grid.html")
    dom = _render(page, tmp_path, "grid")
    for title in ("Configs", "Parallel coordinates", "Parameter importance", "Findings", "Manifest"):
        assert f"<h3>{title}</h3>" in dom


@browser
def test_a_comparison_draws_each_folder_and_the_distributions(tmp_path):
    page = report_html.write_report(COMPARED, tmp_path / "comparison.html")
    dom = _render(page, tmp_path, "comparison")
    ids = _figure_ids(page.read_text())
    assert {"cmp-edf", "cmp-best"} <= set(ids) and {f"f{i}-parcoords" for i in range(3)} <= set(ids)
    assert dom.count('<section class="folder"') == 4


@pytest.fixture(scope="module")
def halving_folder(tmp_path_factory):
    from jaxreg.sweeps import build_spec, run_sweep
    from test_halving import HALVING
    from test_sweep import tiny

    out = tmp_path_factory.mktemp("halving") / "run"
    run_sweep(build_spec(tiny(**HALVING)), out, progress=False)
    return out


@browser
def test_a_halving_report_greys_pruned_configs_and_counts_members_per_rung(tmp_path, halving_folder):
    page = report_html.write_report([halving_folder], tmp_path / "halving.html")
    text = page.read_text()
    figures = json.loads(re.search(r'id="jaxreg-figures">(.*?)</script>', text, flags=re.S)[1])
    rungs = figures["f0-rungs"]["data"][0]
    assert rungs["x"] == ["2", "4", "8"] and rungs["y"] == [16, 8, 4]  # 8 configs x 2 seeds, halved twice
    grey = [t for t in figures["f0-curves"]["data"] if t.get("mode") == "lines+markers" and "pruned" in t["name"]]
    assert len(grey) == 6 and all(t["line"]["color"] == report_html.PRUNED for t in grey)
    assert len(figures["f0-curves"]["layout"]["shapes"]) == 3  # a dotted line at each rung
    assert text.count('<tbody class="cfg pruned">') == 6
    lines = figures["f0-parcoords"]["data"]  # pruned configs drawn too, in grey, at their last rung's value
    assert lines[0]["line"]["color"] == report_html.PRUNED and lines[0]["x"].count(None) == 6
    assert sum(t["x"].count(None) for t in lines) == 8 and "pruned configs in grey" in figures["f0-parcoords"]["layout"]["title"]["text"]
    assert "epoch 2, the first rung" in figures["f0-importance"]["layout"]["title"]["text"]  # all 8 configs at epoch 2
    _render(page, tmp_path, "halving")


@browser
def test_strings_from_the_folder_are_escaped_not_run(tmp_path):
    hostile = '<script>document.body.setAttribute("data-pwned", 1)</script><img src=x onerror="document.body.setAttribute(\'data-pwned\', 2)">'
    folder = tmp_path / "hostile"
    shutil.copytree(GRID, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["spec"].update(name=hostile, description=hostile)
    manifest["spec_sha256"] = spec_sha256(manifest["spec"])
    if "spec_parts" in manifest:
        manifest["spec_parts"] = spec_parts(manifest["spec"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    lines = [json.loads(line) for line in (folder / "trials.jsonl").read_text().splitlines()]
    (folder / "trials.jsonl").write_text("".join(json.dumps({**r, "case": hostile}) + "\n" for r in lines))
    page = report_html.write_report([folder], tmp_path / "hostile.html")
    assert "<script>document" not in page.read_text() and "<img src=x" not in page.read_text()
    dom, console = headless.dom(page, tmp_path / "profile")
    body = re.search(r"<body[^>]*>", dom)[0]
    assert "data-pwned" not in body and "data-rendered" in body, body
    assert "&lt;script&gt;document.body" in dom  # shown as text


def test_a_large_folder_is_drawn_as_counts_and_samples_and_small_ones_in_full(monkeypatch):
    """Above MANY_POINTS configs: no WebGL, counts in cells, a sample of lines, the best dots; the
    thresholds lowered here so the 16-config grid counts as large."""
    def figures():
        page = report_html.build_page([load_folder(GRID)], plotly_js="")
        return json.loads(re.search(r'id="jaxreg-figures">(.*?)</script>', page, flags=re.S)[1])

    small = figures()
    assert sum(t["x"].count(None) for t in small["f0-parcoords"]["data"]) == 16  # every config a line
    assert {t["type"] for f in small.values() for t in f["data"]} <= set(report_html.TRACES)  # what the bundle draws
    assert small["f0-metric"]["layout"]["yaxis"]["ticktext"] == ["0.1", "0.2", "0.5", "1", "2"]  # 1-2-5, not 2..9
    monkeypatch.setattr(report_html, "MANY_POINTS", 5)
    monkeypatch.setattr(report_html, "MAX_LINES", 8)
    monkeypatch.setattr(report_html, "BEST_DOTS", 3)
    large = figures()
    assert sum(t["x"].count(None) for t in large["f0-parcoords"]["data"]) == 8
    assert "the best 4 of 16" in large["f0-parcoords"]["layout"]["title"]["text"]
    folder = load_folder(GRID)
    assert [t["type"] for t in large["f0-metric"]["data"]][:2] == ["scatter", "scatter"]  # the binned lines
    assert [i["xref"] for i in large["f0-metric"]["layout"]["images"]] == ["x", "x2"]  # counts: an image a panel
    # the learning-rate panel's counts against numpy's 2-D histogram: 40 x 30 cells, geometric on
    # the log axes, a pixel each (the top row first); empty cells clear, more configs darker
    lr = np.array([r["learning_rate"] for r in folder.rows])
    loss = np.array([r["val_loss_mean"] for r in folder.rows])
    counts, _, _ = np.histogram2d(loss, lr, bins=[np.geomspace(loss.min(), loss.max(), 31),
                                                  np.geomspace(lr.min(), lr.max(), 41)])
    counts = counts[::-1]
    image = large["f0-metric"]["layout"]["images"][0]
    pixels = _pixels(image["source"])
    assert pixels.shape == (30, 40, 4) and counts.sum() == 16  # every config counted once
    np.testing.assert_array_equal(pixels[..., 3] > 0, counts > 0)
    full = counts > 0
    grey, n = pixels[..., 0][full].astype(int), counts[full]
    assert all((g1 > g2) == (n1 < n2) for g1, n1 in zip(grey, n) for g2, n2 in zip(grey, n))
    if n.min() < n.max():  # plotly's grey scale, from the fewest to the most
        assert grey.min() == 0x40 and grey.max() == 0xe8
    else:  # the same count in every cell (here: 4 configs in each): the middle grey
        assert set(grey) == {0x94}
    uneven = report_html._grey_cells(np.array([[0, 1], [3, 5]]))
    np.testing.assert_array_equal(uneven[..., 0], [[0, 0xe8], [0x94, 0x40]])  # 1 to 5: light to dark; empty: clear
    np.testing.assert_array_equal(uneven[..., 3], [[0, 255], [255, 255]])
    assert image["x"] == pytest.approx(np.log10(lr.min())) and image["x"] + image["sizex"] == pytest.approx(np.log10(lr.max()))
    assert large["f0-metric"]["layout"]["xaxis"]["range"] == pytest.approx([np.log10(lr.min()), np.log10(lr.max())])
    dots = [t for t in large["f0-pairs"]["data"] if not t["marker"].get("showscale")]
    assert [len(t["x"]) for t in dots] == [3]
    assert len(large["f0-best"]["layout"]["images"]) == 2  # configs evaluated, compute
    assert {t["type"] for f in large.values() for t in f["data"]} <= set(report_html.TRACES)  # no WebGL, no heatmap


def _pixels(uri: str) -> np.ndarray:
    """A figure's image (a PNG data URI) as an RGBA array."""
    import base64
    import io

    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))


def test_pairs_of_axes_are_the_best_config_mean_in_each_cell_with_empty_cells_empty():
    """The pairs panel against a loop over the configs: the grid's 4 x 4 (learning rate, l2)
    values each get a cell (edges halfway between neighbours, geometrically on the log axes), the
    best (lowest) mean of the configs in it; a binned axis gets PAIR_BINS cells; an empty cell is
    null (a heatmap leaves it blank where a contour would invent a value)."""
    folder = load_folder(GRID)
    rows = [r for r in folder.rows if "learning_rate" in r and "l2" in r]
    gx, gy, z = report_html._pair_cells(folder, rows, "learning_rate", "l2")
    lrs, l2s = sorted({r["learning_rate"] for r in rows}), sorted({r["l2"] for r in rows})
    assert len(gx) == len(lrs) + 1 and len(gy) == len(l2s) + 1
    assert report_html._log_axis(folder, "learning_rate") and not report_html._log_axis(folder, "l2")  # l2 has 0
    for values, edges, log in ((lrs, gx, True), (l2s, gy, False)):
        at = np.log(values) if log else np.array(values)
        mids = (at[:-1] + at[1:]) / 2
        np.testing.assert_allclose(edges[1:-1], np.exp(mids) if log else mids, rtol=1e-6, atol=1e-12)  # 7 digits kept
        assert all(lo < v < hi for v, lo, hi in zip(values, edges[:-1], edges[1:]))
    scale = 100 if "accuracy" in folder.metric else 1
    for i, l2 in enumerate(l2s):
        for j, lr in enumerate(lrs):
            inside = [r[f"{folder.metric}_mean"] for r in rows if r["l2"] == l2 and r["learning_rate"] == lr]
            assert (z[i][j] is None) == (not inside)
            if inside:
                assert z[i][j] == pytest.approx(min(inside) * scale, rel=1e-6)
    # a continuous axis: PAIR_BINS cells over its range; the config of one cell alone sets it, others stay empty
    edges, index = report_html._cells(np.array([1e-4, 2e-4, 1e-1]), log=True)
    assert len(edges) == 4 and list(index) == [0, 1, 2]
    many = np.geomspace(1e-4, 1e-1, 30)
    edges, index = report_html._cells(many, log=True)
    assert len(edges) == report_html.PAIR_BINS + 1 and edges[0] == pytest.approx(1e-4) and edges[-1] == pytest.approx(1e-1)
    assert index.min() == 0 and index.max() == report_html.PAIR_BINS - 1 and np.all(np.diff(index) >= 0)
    assert all(edges[k] <= v <= edges[k + 1] for v, k in zip(many, index))


def test_the_pairs_image_colours_each_cell_with_its_value_on_one_scale():
    """The pairs image of the grid: the pixel at each cell's centre has the cell's colour, its
    best mean placed on plotly's Viridis between the smallest and the largest cell of every pair
    (one scale, the colour bar's), interpolated here by hand; axes' ranges are the cells' edges."""
    folder = load_folder(GRID)
    figure = report_html._pairs(folder)
    rows = [r for r in folder.rows if "learning_rate" in r and "l2" in r]
    gx, gy, z = report_html._pair_cells(folder, rows, "learning_rate", "l2")
    image, pixels = figure["layout"]["images"][0], _pixels(figure["layout"]["images"][0]["source"])
    size = report_html.CELL_PIXELS
    assert pixels.shape == (size, size, 4)
    x_at, y_at = np.log10(gx), np.array(gy)  # learning rate on a log axis, l2 (it has 0) linear
    assert [image["x"], image["x"] + image["sizex"]] == pytest.approx([x_at[0], x_at[-1]])
    assert [image["y"] - image["sizey"], image["y"]] == pytest.approx([y_at[0], y_at[-1]])
    assert figure["layout"]["xaxis"]["range"] == pytest.approx([x_at[0], x_at[-1]])
    bar = [t for t in figure["data"] if t["marker"].get("showscale")]
    assert len(bar) == 1
    low, high = bar[0]["marker"]["cmin"], bar[0]["marker"]["cmax"]
    assert low == min(v for row in z for v in row if v is not None)
    stops = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"]
    for i in range(len(gy) - 1):
        for j in range(len(gx) - 1):
            col = int(((x_at[j] + x_at[j + 1]) / 2 - x_at[0]) / (x_at[-1] - x_at[0]) * size)
            row = size - 1 - int(((y_at[i] + y_at[i + 1]) / 2 - y_at[0]) / (y_at[-1] - y_at[0]) * size)
            if z[i][j] is None:
                assert pixels[row, col, 3] == 0
                continue
            t = (z[i][j] - low) / (high - low) * 9  # minimized: low values dark
            k = min(int(t), 8)
            a, b = (np.array([int(stops[m][c:c + 2], 16) for c in (1, 3, 5)]) for m in (k, k + 1))
            np.testing.assert_allclose(pixels[row, col, :3], a + (b - a) * (t - k), atol=0.51)
            assert pixels[row, col, 3] == 255


def test_importance_is_the_share_of_variance_between_groups():
    means = np.array([1.0, 1.2, 3.0, 3.4, 5.0, 5.2])
    codes = np.array([0, 0, 1, 1, 2, 2])
    groups = [means[codes == k] for k in range(3)]
    between = sum(len(g) * (g.mean() - means.mean()) ** 2 for g in groups)
    assert report_html.explained(means, codes)[0] == pytest.approx(between / ((means - means.mean()) ** 2).sum())
    assert report_html.explained(np.array([2.0, 2.0, 2.0]), np.array([0, 1, 2]))[0] == 0.0  # no variance at all
    shares = dict((n, (s, lo, hi)) for n, s, lo, hi in report_html.importance(load_folder(GRID)))
    assert shares["learning_rate"][0] > 0.99 and shares["l2"][0] < 0.01  # the grid's lr decides everything
    lr, l2 = shares["learning_rate"], shares["l2"]
    assert lr[1] <= lr[0] + 1e-4 and lr[2] >= lr[0] - 1e-4 and lr[1] > 0.99  # resampled seeds: lr still decides
    assert l2[1] <= l2[2] < 0.01


def test_the_command_line_writes_the_page_and_refuses_bad_input_in_one_line(tmp_path, capsys, monkeypatch):
    assert cli.main(["report", str(GRID), "--out", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    for args, said in ((["report", str(tmp_path / "missing")], "expected a jaxreg results folder"),
                       (["report", str(ROOT / "jaxreg")], "expected a jaxreg results folder"),
                       (["report", str(GRID), "--out", str(tmp_path)], "--out: expected an HTML file path"),
                       (["report", str(GRID), str(GRID)], "expected distinct results folders")):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    # plotly.js ships with jaxreg: the report needs no plotly package, and inlines the basic bundle
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    assert cli.main(["report", str(GRID), "--out", str(tmp_path / "r2.html")]) == 0
    page = (tmp_path / "r2.html").read_text()
    assert page.count("plotly.js (basic - minified) v") == 1


def test_a_folder_without_trials_is_refused(tmp_path):
    folder = tmp_path / "empty"
    shutil.copytree(GRID, folder)
    (folder / "trials.jsonl").write_text("")
    with pytest.raises(InputError, match="no trials"):
        report_html.write_report([folder], tmp_path / "r.html")
