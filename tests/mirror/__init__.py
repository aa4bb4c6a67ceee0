"""MMM-Needlecare, Needlecare's MagicMirror² module, tested on a real MagicMirror."""
