"""examples/tour.ipynb runs in a real Jupyter kernel, and its results show themselves as a notebook shows them.

The notebook is executed by nbclient in an ipykernel kernel, as Jupyter would run it, in a temporary folder.
Every cell must run without an error; the Monte-Carlo experiment and the comparison must come back as HTML
tables (their `_repr_html_`), their `.plot()` Figures as PNG pictures; and riskmin's progress must leave
nothing behind but its lines: no empty output where a progress bar was, no warning on stderr.
"""
import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TOUR = Path(__file__).parent.parent / "examples" / "tour.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.read(TOUR, as_version=4)
    folder = tmp_path_factory.mktemp("tour")
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def result_of(notebook, source_start: str) -> dict:
    """The execute_result of the code cell whose last line starts with `source_start`."""
    cell = next(c for c in code_cells(notebook) if c.source.splitlines()[-1].startswith(source_start))
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.source
    return results[0]["data"]


def test_the_tour_is_stored_without_outputs():
    notebook = nbformat.read(TOUR, as_version=4)
    nbformat.validate(notebook)
    assert all(not cell.outputs and cell.execution_count is None for cell in code_cells(notebook))


def test_every_cell_runs(executed):
    cells = code_cells(executed)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]


def test_the_line_fit_ends_at_the_least_squares_line(executed):
    printed = "".join(o.text for cell in code_cells(executed) for o in cell.outputs if o.output_type == "stream")
    assert "y = 1.0235 + 1.9690 x" in printed


@pytest.mark.parametrize("name, caption", [("mc", "MonteCarlo(lab1, two_layer, 20 runs"), ("result", "Comparison(lab1, 3 candidates")])
def test_results_show_as_html_tables(executed, name, caption):
    data = result_of(executed, name)
    assert data["text/plain"].startswith(caption)
    assert data["text/html"].startswith("<table><caption>" + caption) and data["text/html"].count("<tr>") >= 4


@pytest.mark.parametrize("name", ["mc.plot()", "result.plot()"])
def test_plots_show_as_pictures(executed, name):
    picture = base64.b64decode(result_of(executed, name)["image/png"])
    assert picture.startswith(b"\x89PNG\r\n\x1a\n") and len(picture) > 10_000


def test_progress_leaves_only_its_lines(executed):
    outputs = [o for cell in code_cells(executed) for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert shown  # the epoch lines and the runs finished are there...
    texts = [o["data"].get("text/plain", "") for o in shown]
    assert all(text.strip() for text in texts)  # ...and no empty output where a bar was
    assert not [o for o in shown if set(o["data"]) - {"text/plain", "text/html"}]  # nor a widget
    lines = "".join(texts)
    assert "epoch        loss    val loss" in lines and " 1000 " in lines and "runs finished: 20 of 20" in lines
    assert "Warning" not in lines
