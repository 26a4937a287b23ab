"""``python -m global_model defog``: write defogged images with an SJDL checkpoint (transitional wrapper; the command code moves here)."""
import importlib

HELP = "write defogged images with an SJDL checkpoint"


def add_arguments(parser):
    importlib.import_module("global_model.engine.defog").add_arguments(parser)


def run(args):
    return importlib.import_module("global_model.engine.defog").run(args)
