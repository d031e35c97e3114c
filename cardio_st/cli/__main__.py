"""``python -m cardio_st.cli`` (as torchrun launches it): the ``cardio-st`` command."""

from cardio_st.cli import main

main()
