"""``python -m global_model extract``: extract query/gallery features to pickles (transitional wrapper; the command code moves here)."""
import importlib

HELP = "extract query/gallery features to pickles"


def add_arguments(parser):
    importlib.import_module("global_model.engine.extractor").add_arguments(parser)


def run(args):
    return importlib.import_module("global_model.engine.extractor").run(args)
