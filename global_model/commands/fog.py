"""``python -m global_model fog``: add synthetic fog to a folder of clear images (FVRID-style pairs) (transitional wrapper; the command code moves here)."""
import importlib

HELP = "add synthetic fog to a folder of clear images (FVRID-style pairs)"


def add_arguments(parser):
    importlib.import_module("global_model.data.fog").add_arguments(parser)


def run(args):
    return importlib.import_module("global_model.data.fog").run(args)
