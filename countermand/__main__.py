"""``python -m countermand``: the same as the ``countermand`` command."""

from countermand.cli import main

main()
