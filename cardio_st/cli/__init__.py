"""The ``cardio-st`` command line: parses arguments and calls the Python API, one module per command group.
Leaves out any logic the API lacks; imports torch only inside commands, so ``--help`` stays instant.

- [base][cardio_st.cli.base]: the Typer app, errors as one line with flags, quiet logging, ``--version``.
- [search][cardio_st.cli.search]: ``search``, ``chapters``, ``index``, ``export``.
- [hub][cardio_st.cli.hub]: ``push``, ``convert``.
- [train][cardio_st.cli.train]: ``train``, ``care align``, ``care finetune``.
- [data][cardio_st.cli.data]: ``prepare``, ``prepare-icd10``.
- [label][cardio_st.cli.label]: ``label``, ``label-review``.
- [evaluate][cardio_st.cli.evaluate]: ``evaluate``.
"""

from __future__ import annotations

from cardio_st.cli import data, evaluate, hub, label, search, train
from cardio_st.cli.base import app

__all__ = ["app", "main"]

# Registered here, in the order `cardio-st --help` lists them.
app.command()(search.search)
app.command()(search.export)
app.command()(hub.push)
app.command()(hub.convert)
app.command("index")(search.index_command)
app.command()(train.train)
app.add_typer(train.care_app, name="care")
app.command()(data.prepare)
app.command("prepare-icd10")(data.prepare_icd10)
app.command()(label.label)
app.command("label-review")(label.label_review)
app.command()(evaluate.evaluate)
app.command()(search.chapters)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cardio-st`` script."""
    app(args=argv, prog_name="cardio-st")


if __name__ == "__main__":
    main()
