"""``python -m global_model synth``: generate the synthetic foggy-vehicle benchmark (AIC20 layout) (transitional wrapper; the command code moves here)."""
import importlib

HELP = "generate the synthetic foggy-vehicle benchmark (AIC20 layout)"


def add_arguments(parser):
    importlib.import_module("global_model.data.synth").add_arguments(parser)


def run(args):
    return importlib.import_module("global_model.data.synth").run(args)
