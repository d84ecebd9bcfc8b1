"""The BENCHMARKS.md block rewriter and the Markdown table helper."""

import pytest

from sw.benchmarks import update
from sw.markdown import table


def test_table_rule_follows_align_and_cells_go_through_str():
    assert table(["layer", "weights", "drop"], [["fc1", 235200, 0.5], ["fc2", "", "-"]], "lrr") == [
        "| layer | weights | drop |", "|---|---:|---:|", "| fc1 | 235200 | 0.5 |", "| fc2 |  | - |"]
    assert table(["a", "b"], [])[1] == "|---|---|"


@pytest.mark.parametrize("header, rows, align", [(["a", "b"], [[1]], ""), (["a", "b"], [], "r"),
                                                  (["a", "b"], [], "lc")])
def test_table_rejects_ragged_rows_and_bad_align(header, rows, align):
    with pytest.raises(ValueError):
        table(header, rows, align)


def test_update_rewrites_its_blocks_appends_new_ones_and_leaves_the_rest(tmp_path, capsys):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# B\n\nprose\n\n<!-- bench:a -->\nold\n<!-- /bench:a -->\n\nmore prose\n")
    update({"a": lambda: "new a\n", "b": lambda: "new b"}, ["a", "b"], path)
    text = path.read_text()
    assert text.startswith("# B\n\nprose\n\n<!-- bench:a -->\n_Measured on ")
    assert "\n\nnew a\n<!-- /bench:a -->\n\nmore prose\n" in text and "old" not in text
    assert text.endswith("\n\nnew b\n<!-- /bench:b -->\n") and "took" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown"):
        update({"a": lambda: "x"}, ["a", "c"], path)
    assert path.read_text() == text
