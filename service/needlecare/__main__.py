"""``python -m needlecare`` is the ``needlecare`` command."""

from needlecare.cli.main import main

main()
