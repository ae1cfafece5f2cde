"""The `stedi` command: a thin layer over stedi.api."""
