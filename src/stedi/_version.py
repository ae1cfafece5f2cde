"""What stedi is on a package index: its distribution's name and version, each written only here
(pyproject.toml reads the version from this file; CHANGELOG.md says what each version changed).

The distribution is `stedi-lakehouse`: `stedi` on the public index is another company's SDK. The import
package and the command keep the name `stedi`."""

DISTRIBUTION = "stedi-lakehouse"
__version__ = "0.2.0"
