"""``python -m global_model train``: train a model from a yacs config (torchrun for multi-GPU) (transitional wrapper; the command code moves here)."""
import importlib

HELP = "train a model from a yacs config (torchrun for multi-GPU)"


def add_arguments(parser):
    importlib.import_module("global_model.engine.launch").add_arguments(parser)


def run(args):
    return importlib.import_module("global_model.engine.launch").run(args)
