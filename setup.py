"""The compiled part of the package: the C extension of the Avro writer and reader
(`workers/contracts/avro_program.py`, `avro_read_program.py`).

Everything else is declared in pyproject.toml. The extension is optional: without a C compiler
(or Python's headers) the build goes on without it, and the Python writer and fastavro are used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "workers.contracts._avro_speedups",
            ["workers/contracts/_avro_speedups.c"],
            optional=True,
            extra_compile_args=[
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-Wno-missing-field-initializers",
            ],
        )
    ]
)
