"""``python -m needlecare`` is the ``needlecare`` command."""

import gc

# Off while the command's modules load: see needlecare.cli.main.main.
gc.disable()

from needlecare.cli.main import main  # noqa: E402 - after the collector is off

main()
