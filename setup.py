"""Builds the optional native scanner (``transforms/_speedups.c``) at install.

``optional=True``: where no C compiler is found the install still succeeds, and
records decode through the pure-Python path (``transforms.native``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "transforms._speedups",
            sources=["transforms/_speedups.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
