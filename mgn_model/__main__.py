import sys

from global_model.cli import main

sys.exit(main(prog="mgn_model", commands=("train", "extract")))
