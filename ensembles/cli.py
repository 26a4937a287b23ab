"""`ensemble` command-line interface."""
import click


@click.group()
def main():
    """Fuse ReID features of several models into challenge submissions."""
