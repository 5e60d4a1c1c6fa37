"""The data dictionary is generated from schemas/warehouse.yaml and is up to date in the repo."""

from __future__ import annotations

import pytest

from pipelines.warehouse.dictionary import DICTIONARY_PATH, main, render_dictionary
from pipelines.warehouse.spec import load_spec


def test_the_committed_dictionary_is_what_the_spec_generates():
    assert DICTIONARY_PATH.read_text(encoding="utf-8") == render_dictionary(), (
        "docs/DATA_DICTIONARY.md is stale: run `python -m pipelines.warehouse.dictionary`"
    )


def test_the_command_writes_where_it_is_told_and_help_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0 and "usage:" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # once, `--help` was the file it wrote
    main([str(tmp_path / "dictionary.md")])
    assert (tmp_path / "dictionary.md").read_text(encoding="utf-8") == render_dictionary()


def test_every_table_and_column_has_its_meaning_in_the_dictionary():
    text = render_dictionary()
    spec = load_spec()
    for table in spec.tables.values():
        assert f"### `{table.name}`" in text
        for column in table.columns:
            assert column.description
            assert f"| `{column.name}`" in text, f"{table.name}.{column.name}"
    for mart in spec.marts:
        assert f"**Question:** {mart.question}" in text
    assert text.count("```sql") == 10


def test_hours_and_counts_say_their_unit():
    spec = load_spec()
    for table in spec.tables.values():
        for column in table.columns:
            if column.decimal or column.type == "bigint":
                assert column.unit, f"{table.name}.{column.name} has no unit"
