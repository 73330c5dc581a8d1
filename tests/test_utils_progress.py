"""`utils.progress_bar` in a real Jupyter kernel: the saved text shows where the bar ended, and
closing, deleting and collecting bars raises nothing later (tqdm closes again from __del__)."""

import re

import nbformat
from nbclient import NotebookClient

SOURCE = """\
import gc
from rlcourse.utils import progress_bar
for _ in progress_bar(range(5), desc="loop"):
    pass
bar = progress_bar(total=3, desc="manual")
bar.update(3)
bar.close()
del bar
forgotten = progress_bar(total=4, desc="never closed")
forgotten.update(1)
del forgotten
gc.collect()
"""


def test_progress_bar_saves_its_end_and_survives_collection():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SOURCE), nbformat.v4.new_code_cell("import gc; gc.collect(); print('after')")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in outputs if o.output_type == "display_data"]
    assert any(t.startswith("loop: 100%") and "5/5" in t for t in texts), texts
    assert any(t.startswith("manual: 100%") and "3/3" in t for t in texts), texts
    assert not any(re.match(r"(loop|manual): +0%", t) for t in texts), texts  # the 0% of the first display is gone
    assert [o for o in nb.cells[1].outputs if o.output_type == "stream"][0].text == "after\n"
